"""The customer's message inside an agent's forward: attached, or inline as each client writes it.

An agent who got a customer's mail in their own mailbox forwards it to support to open a
ticket for that customer. The forwarded message travels either whole, as an attached
``message/rfc822`` (every client's "forward as attachment"), or as text under a line and a
header block that each client writes its own way, in the writer's language: Gmail and
Mail.ru ("---------- Forwarded message ---------", "От кого:"), Thunderbird ("--------
Forwarded Message --------" over a Subject/Date/From/To table), Apple Mail ("Begin forwarded
message:", quoted), Yandex ("-------- Начало переадресованного сообщения --------" over a
"<date>, "Name" <address>:" line), Outlook ("From: / Sent: / To: / Subject:" under a rule).
Outlook's block is the same as a reply's quote, so it counts as a forward only under a
subject that says so (FW:, Fwd:, Пересл:). The markers and header blocks are the quote
detector's (``quotes``); this module reads the fields out of them.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from collections.abc import Sequence
from datetime import datetime
from email.message import Message

from postdesk.parsers import mime
from postdesk.parsers.model import Attachment, Forwarded, StoreBlob
from postdesk.parsers.quotes import (
    ADDRESS_END,
    FORWARD,
    FORWARD_END,
    RULE,
    SEPARATOR,
    header_block,
    strip_signature,
)
from postdesk.parsers.references import message_ids

PREFIX = re.compile(r"^\s*(?:(?:Fwd?|FW|Пересл|ПЕРЕСЛ|Переслать|TR|WG)\s*:\s*)+", re.IGNORECASE)
"""Forward prefixes of the subject, stacked ones included ("Fwd: FW: ...")."""
FIELD = re.compile(r"^\s*\**\s*([^:：*]{1,30}?)\s*\**\s*[:：]\s*\**\s*(.*?)\s*$")
FIELDS = {
    "from": "from",
    "от": "from",
    "от кого": "from",
    "отправитель": "from",
    "sender": "from",
    "date": "date",
    "sent": "date",
    "дата": "date",
    "отправлено": "date",
    "subject": "subject",
    "тема": "subject",
    "to": "to",
    "кому": "to",
    "cc": "cc",
    "копия": "cc",
    "reply-to": "reply-to",
}
"""Field names of the forward header blocks, English and Russian, to what they name."""
MAILTO = re.compile(r"\[\s*mailto:\s*([^\]\s]+)\s*\]", re.IGNORECASE)
"""Outlook's older form: ``Ann Smith [mailto:ann@example.org]``."""
MONTHS = {
    "янв": "Jan",
    "фев": "Feb",
    "мар": "Mar",
    "апр": "Apr",
    "мая": "May",
    "май": "May",
    "июн": "Jun",
    "июл": "Jul",
    "авг": "Aug",
    "сен": "Sep",
    "окт": "Oct",
    "ноя": "Nov",
    "дек": "Dec",
}
RUSSIAN_MONTH = re.compile(r"\b(" + "|".join(MONTHS) + r")[а-я]*\.?", re.IGNORECASE)
DATE_NOISE = re.compile(r"\b(?:at|в|г\.)(?=\s)|^[^\W\d_]{2,12}\.?,\s*", re.IGNORECASE)
"""Words between a written date's parts ("at", "в", "г."), and a weekday in front."""
GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*([+-])\s*(\d{1,2})(?::?(\d\d))?\b")
QUOTE_MARK = re.compile(r"^ ?> ?")
MAX_BLOCK = 12
"""Lines of a forward's header block read at most."""


def forwarded(
    message: Message,
    text: str,
    subject: str,
    attachments: Sequence[Attachment],
    store_blob: StoreBlob | None,
    max_attachment: int,
) -> Forwarded | None:
    """The forwarded message of an agent's mail, or None when it forwards nothing."""
    enclosed = _enclosed(message)
    if enclosed is not None:
        return _attached(enclosed, text, attachments, store_blob, max_attachment)
    return _inline(text, subject, attachments)


def without_prefix(subject: str) -> str:
    """The subject without its forward prefixes."""
    return PREFIX.sub("", subject).strip()


def _enclosed(message: Message) -> Message | None:
    """The first message attached to the mail itself (not one inside another part)."""
    parts = message.get_payload() if message.is_multipart() else []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Message):
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if part.get_content_type() == "multipart/mixed":
            found = _enclosed(part)
            if found is not None:
                return found
    return None


def _attached(
    enclosed: Message,
    text: str,
    attachments: Sequence[Attachment],
    store_blob: StoreBlob | None,
    max_attachment: int,
) -> Forwarded:
    """The enclosed message is read as any mail is; its files are the customer's, and the
    outer mail's other files are the agent's."""
    inner = mime.read(mime.as_bytes(enclosed), store_blob, max_attachment)
    senders = mime.addresses(inner.message, "from", inner.defects)
    name, address = senders[0] if senders else ("", "")
    found = message_ids(mime.header(inner.message, "message-id"))
    return Forwarded(
        form="attached message",
        from_addr=address,
        from_name=name,
        subject=mime.header(inner.message, "subject"),
        date=mime.date(inner.message),
        text=inner.text,
        html=inner.html,
        attachments=tuple(inner.attachments),
        message_id=found[0] if found else None,
        headers=mime.headers(inner.message),
        note=strip_signature(text).strip(),
        note_attachments=tuple(a for a in attachments if a.content_type != "message/rfc822"),
    )


def _inline(text: str, subject: str, attachments: Sequence[Attachment]) -> Forwarded | None:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _start(lines, bool(PREFIX.match(subject)))
    if start is None:
        return None
    marker, first, form = start
    quoted = bool(QUOTE_MARK.match(lines[marker])) and bool(FORWARD.match(_unquoted(lines[marker])))
    body = [_unquoted(line) if quoted else line for line in lines[first:]]
    fields, rest = _fields(body)
    if form == "Yandex" or "from" not in fields:
        fields, rest = _attribution(body) or (fields, rest)
    end = next((i for i, line in enumerate(rest) if FORWARD_END.match(line)), len(rest))
    name, address = _sender(fields.get("from", ""))
    return Forwarded(
        form=form,
        from_addr=address,
        from_name=name,
        subject=fields.get("subject") or without_prefix(subject),
        date=written_date(fields.get("date", "")),
        text=textwrap.dedent("\n".join(rest[:end])).strip("\n"),
        html=None,
        attachments=tuple(a for a in attachments if not a.inline),
        message_id=None,
        headers={},
        note=textwrap.dedent(strip_signature("\n".join(lines[:marker]))).strip(),
    )


def _start(lines: list[str], subject_says_forward: bool) -> tuple[int, int, str] | None:
    """(marker line, first line after it, client form) of the first forward in the text.

    A marker line is a forward whatever the subject; an Outlook header block (under its
    rule or bare, as the new Outlook writes it) only under a forward subject."""
    for i, line in enumerate(lines):
        plain = _unquoted(line)
        if FORWARD.match(plain):
            return i, i + 1, _form(plain)
        if not subject_says_forward:
            continue
        if (SEPARATOR.match(line) or RULE.match(line)) and header_block(lines, _next(lines, i)):
            return i, i + 1, "Outlook"
        if header_block(lines, i):
            return i, i, "Outlook"
    return None


def _form(marker: str) -> str:
    """The client that writes this marker line (Gmail's rule is longer than the others')."""
    lowered = marker.lower()
    if marker.rstrip().endswith(":"):
        return "Apple Mail"
    if "начало" in lowered or "beginning" in lowered:
        return "Yandex"
    if "Forwarded Message" in marker or "перенаправленное" in lowered:
        return "Thunderbird"
    return "Gmail" if marker.count("-") >= 18 else "Mail.ru"


def _next(lines: list[str], index: int) -> int:
    return next((j for j in range(index + 1, len(lines)) if lines[j].strip()), len(lines) - 1)


def _unquoted(line: str) -> str:
    return QUOTE_MARK.sub("", line, count=1)


def _fields(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """The header block's fields, and the lines below it. Blank lines before the block are
    skipped; the block ends at a blank line or at the first line that is no known field
    (the new Outlook puts the text right under "Subject:")."""
    fields: dict[str, str] = {}
    first = next((j for j, line in enumerate(body) if line.strip()), len(body))
    i = first
    while i < len(body) and i - first < MAX_BLOCK:
        match = FIELD.match(body[i])
        key = FIELDS.get(match[1].strip().lower()) if match else None
        if match is None or key is None:
            break
        fields.setdefault(key, match[2])
        i += 1
    return fields, body[i:] if fields else body


def _attribution(body: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """Yandex's and Mail.ru's one line over the forwarded text:
    ``23.11.2026, 10:00, "Анна" <anna@example.ru>:``."""
    i = next((j for j, line in enumerate(body) if line.strip()), len(body))
    if i == len(body) or not ADDRESS_END.search(body[i]):
        return None
    line = body[i].strip().rstrip(":：").strip()
    angle = line.rfind("<")
    head, sender = line[:angle], line[angle:]
    date, _, name = head.rpartition(", ")
    name = re.sub(r"^(?:.*\s)?от\s+", "", name.strip(), flags=re.IGNORECASE)
    return {"from": f"{name} {sender}".strip(), "date": date}, body[i + 1 :]


def _sender(value: str) -> tuple[str, str]:
    """(display name, lower-case address) of a From field as a forward writes it."""
    value = MAILTO.sub(r"<\1>", value)
    for name, address in mime.parse_addresses("from", value):
        address = address.strip().strip("<>").lower()
        if "@" in address and " " not in address:
            return mime.header_text(name).strip("\"' "), address
    return "", ""


def written_date(value: str) -> datetime | None:
    """A date as a forward block writes it, in English or Russian: "Wed, Oct 27, 2021 at
    9:31 AM", "ср, 27 окт. 2021 г. в 09:31", "26 октября 2021 г. в 14:25:08 GMT+3",
    "Wed, 3 Nov 2021 15:51:30 +0100", "23.11.2026, 10:00". Without a zone it is naive (the
    writer's local time, which only the desk can place); None when it cannot be read."""
    value = value.strip()
    if not value:
        return None
    text = RUSSIAN_MONTH.sub(lambda m: MONTHS[m[1].lower()[:3]], value)
    text = DATE_NOISE.sub(" ", text)
    text = GMT_OFFSET.sub(lambda m: f"{m[1]}{int(m[2]):02d}:{m[3] or '00'}", text)
    from dateutil import parser as dateparser  # only a forward's date needs it, not every start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)  # "EEST": local
        try:
            found: datetime = dateparser.parse(text, dayfirst=True, fuzzy=True)
            return found
        except (ValueError, OverflowError):
            return None
