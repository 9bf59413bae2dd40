"""The desk under attack: `postdesk run` with its SMTP listener, SQLite and a Maildir outbox,
driven by an SMTP client as an attacker would, and read back from what it wrote."""

from __future__ import annotations

import json
import smtplib
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon
from tests.helpers import free_port, mail, parse_mail, postdesk, read_until

SUPPORT = "support@example.com"
ANNA = "anna@example.com"
CUSTOMER = "ann@example.org"
ATTACKER = "mallory@evil.example"
ADDRESS_FIELDS = ("To", "Cc", "Bcc", "Reply-To", "Resent-To", "Resent-Cc", "Resent-Bcc")


@dataclass
class Desk:
    daemon: Daemon
    config: Path
    data: Path
    maildir: Path
    replies: list[str] = field(default_factory=list)

    def send(
        self,
        message: EmailMessage | bytes,
        rcpts: list[str] | None = None,
        mail_from: str = "mallory@evil.example",
    ) -> str:
        """One SMTP transaction; returns the final reply text (the ingest outcome)."""
        raw = message if isinstance(message, bytes) else message.as_bytes()
        with smtplib.SMTP("127.0.0.1", self.daemon.smtp_port) as client:
            client.ehlo("client.example")
            client.mail(mail_from)
            for rcpt in rcpts or [SUPPORT]:
                client.rcpt(rcpt)
            code, reply = client.data(raw)
        assert code == 250, reply
        self.replies.append(reply.decode())
        return reply.decode()

    def settle(self) -> None:
        """Wait until every queued mail is in the Maildir: the daemon logs each delivery, and
        the rows are known once the listener answered 250 (or a command exited)."""
        while self.sql("SELECT count(*) FROM outbox WHERE status = 'queued'")[0][0]:
            read_until(self.daemon.process, "mail delivered", self.daemon.log, timeout=30)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data / "postdesk.db") as conn:
            return conn.execute(query, params).fetchall()

    def mails(self) -> list[EmailMessage]:
        """Every mail the desk sent, in the order it queued them."""
        self.settle()
        delivered = self.maildir / "new"  # made with the first delivery
        files = sorted(delivered.glob("*"), key=lambda p: p.stat().st_mtime_ns)
        return [parse_mail(p.read_bytes()) for p in files]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mails() if address in addressees(m)]

    def ticket(self, number: int) -> dict[str, Any]:
        done = self.cli("tickets", "show", str(number), "--json")
        return dict(json.loads(done.stdout))

    def tickets(self) -> list[dict[str, Any]]:
        return list(json.loads(self.cli("tickets", "list", "--json").stdout))

    def cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        done = postdesk(self.config, *args)
        assert done.returncode == 0, done.stderr.decode()
        return done

    def assert_never_reached(self, address: str) -> None:
        """No mail names the address in any address field, and none was sent to it."""
        mails = self.mails()
        assert not [m["Subject"] for m in mails if address in addressees(m)]
        envelopes = [json.loads(r) for (r,) in self.sql("SELECT recipients FROM outbox")]
        assert not [r for r in envelopes if address in r]

    def assert_sane_headers(self) -> None:
        """Every mail is from a support address, with no extra recipient fields, and no field
        value a header injection could have split."""
        for message in self.mails():
            (_, sender), *_ = getaddresses([str(message["From"])])
            assert sender.split("+")[0].split("@")[0] == "support", message["From"]
            assert message["Bcc"] is None and message["Resent-To"] is None
            for name, value in message.items():
                assert "\n" not in str(value) and "\r" not in str(value), (name, value)


def addressees(message: EmailMessage) -> set[str]:
    values = [str(v) for f in ADDRESS_FIELDS for v in message.get_all(f, [])]
    return {a.lower() for _, a in getaddresses(values)}


@pytest.fixture
def desk(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> Iterator[Desk]:
    config = write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        notify={"new_ticket": True, "customer_reply": True},
        agent_auth={"trusted_authserv_ids": ["mx.example.com"]},
        business_hours={"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
    )
    daemon = start_daemon(config)
    yield Desk(daemon, config, tmp_path / "data", tmp_path / "sent")


def customer_ticket(desk: Desk, **headers: str) -> tuple[EmailMessage, EmailMessage]:
    """Ticket #1 by the customer; returns the customer's acknowledgement and Anna's notice."""
    assert "ticket_created" in desk.send(mail(sender=f"Ann <{CUSTOMER}>", **headers))
    (ack,) = desk.to(CUSTOMER)
    (notice,) = desk.to(ANNA)
    return ack, notice


def agent_answer(desk: Desk, notice: EmailMessage, body: str) -> str:
    """Anna answers from her notification: its Reply-To carries her token."""
    answer = mail(
        sender=f"Anna <{ANNA}>",
        to=str(notice["Reply-To"]),
        subject=f"Re: {notice['Subject']}",
        body=body,
        In_Reply_To=str(notice["Message-ID"]),
    )
    return desk.send(answer, mail_from=ANNA)
