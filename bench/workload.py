"""The benchmarks' mail: a realistic mix, the same for every path and for the peer.

Of every 10 messages: 2 are replies from the customer who wrote 3 messages before
(In-Reply-To and References to that message, "Re:" subject, its text quoted), 3 carry an
HTML alternative, 1 a PDF attachment; subjects and bodies alternate between English and
Russian. The mix is
deterministic, so two runs (or two systems) get the same bytes apart from Message-IDs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from pathlib import Path

PROBLEMS = [
    ("Printer is on fire", "the printer in room 4 smells of smoke and prints nothing"),
    ("Не работает оплата счёта", "при оплате счёта карта отклоняется без объяснения причин"),
    ("Invoice 2026-11 is wrong", "the November invoice charges us twice for the same seats"),
    ("Site down since 10:00", "the customer portal answers 502 for every page"),
    ("Как сменить пароль?", "не могу найти в личном кабинете, где меняется пароль"),
]
CUSTOMERS = 200


def messages(count: int) -> Iterator[bytes]:
    """``count`` raw messages in the mix described above."""
    sent: deque[tuple[int, EmailMessage]] = deque(maxlen=3)
    for i in range(count):
        if i % 10 in (4, 8):
            customer, earlier = sent[0]
            msg = _reply(earlier, customer, i)
        else:
            customer, msg = i % CUSTOMERS, _new(i)
        sent.append((customer, msg))
        yield msg.as_bytes()


def write(folder: Path, count: int) -> list[Path]:
    """The mix as one ``.eml`` file per message in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, raw in enumerate(messages(count)):
        path = folder / f"{i:06d}.eml"
        path.write_bytes(raw)
        paths.append(path)
    return paths


def _headers(msg: EmailMessage, customer: int, subject: str) -> None:
    name = "Анна Петрова" if customer % 2 else "Ann Customer"
    msg["From"] = f"{name} {customer} <customer{customer}@example.org>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"


def _new(i: int) -> EmailMessage:
    subject, problem = PROBLEMS[i % len(PROBLEMS)]
    msg = EmailMessage()
    _headers(msg, i % CUSTOMERS, f"{subject} ({i})")
    text = f"Hello,\n\n{problem} (request {i}).\n\n" + "More details follow. " * 15
    msg.set_content(text + "\n\n-- \nA customer\n")
    if i % 10 in (1, 3, 6):
        html = "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() if line)
        msg.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    if i % 10 == 0:
        msg.add_attachment(
            b"%PDF-1.4 " * 2000, maintype="application", subtype="pdf", filename=f"scan-{i}.pdf"
        )
    return msg


def _reply(earlier: EmailMessage, customer: int, i: int) -> EmailMessage:
    msg = EmailMessage()
    _headers(msg, customer, f"Re: {earlier['Subject']}")
    msg["In-Reply-To"] = earlier["Message-ID"]
    msg["References"] = earlier["Message-ID"]
    body = earlier.get_body(("plain",))
    quoted = "\n".join(f"> {line}" for line in body.get_content().splitlines()) if body else ""
    msg.set_content(f"Any news? It still happens (reply {i}).\n\nOn Monday I wrote:\n{quoted}\n")
    return msg
