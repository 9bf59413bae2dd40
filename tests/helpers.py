"""Helpers shared by the tests: mail factories, ports, reading the daemon's log."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from pathlib import Path
from typing import Any, cast

from postdesk.parsers.model import InboundMessage, Kind

DATA = Path(__file__).parent / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postdesk(
    config: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """A `postdesk` command on a config, as an admin or an MTA runs it. The timeout only
    bounds a hung command: delivering the outbox after a mail storm takes a while."""
    return subprocess.run(
        [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def brand2_templates(folder: Path) -> Path:
    """Brand2's own templates: its Russian acknowledgement, which says who answered."""
    folder.mkdir()
    (folder / "ack.ru.txt").write_text(
        "Subject: [#{{ ticket.number }}] Brand2: {{ ticket.subject }}\n\n"
        "Brand2 получил обращение #{{ ticket.number }}.\n",
        encoding="utf-8",
    )
    return folder


def mail(
    sender: str = "Ann Customer <ann@example.org>",
    subject: str = "Printer is on fire",
    body: str = "Hello, the printer in room 4 is on fire.",
    to: str = "support@example.com",
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def parse_mail(content: bytes) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(content))


def read_until(
    process: subprocess.Popen[bytes], marker: str, log: list[str], timeout: float
) -> None:
    """Read the daemon's stderr until a log line contains marker (no fixed sleeps)."""
    assert process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = process.stderr.readline().decode("utf-8", "replace")
        if not line:
            break
        log.append(line)
        if marker in line:
            return
    raise AssertionError(f"daemon never logged {marker!r}:\n{''.join(log)}")


def load_mail(name: str) -> bytes:
    return (DATA / "mail" / name).read_bytes()


def inbound(**overrides: Any) -> InboundMessage:
    """An InboundMessage as the parser would build it for a plain customer mail."""
    fields: dict[str, Any] = {
        "raw_sha256": "0" * 64,
        "message_id": "m1@example.org",
        "subject": "Printer is on fire",
        "from_addr": "ann@example.org",
        "from_name": "Ann Customer",
        "to": ("support@example.com",),
        "cc": (),
        "reply_to": (),
        "return_path": "ann@example.org",
        "date": None,
        "in_reply_to": (),
        "references": (),
        "text": "Hello, the printer in room 4 is on fire.",
        "html": None,
        "new_text": "Hello, the printer in room 4 is on fire.",
        "attachments": (),
        "headers": {},
        "kind": Kind.CUSTOMER,
        "kind_reason": "",
        "ticket_number": None,
        "token_tickets": (),
    }
    fields.update(overrides)
    return InboundMessage(**fields)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found
