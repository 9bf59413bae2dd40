"""Deliver queued mail through an SMTP relay or into a Maildir, with retries and backoff.

Temporary and permanent failures are kept apart: codes of 500 and up (except 552) are
permanent and end the row as failed; anything else keeps it queued with exponential
backoff and jitter until `outgoing.max_attempts`.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import random
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from postdesk.config.loader import read_secret
from postdesk.config.schema import Outgoing, Settings, SmtpRelay
from postdesk.daemon import clock
from postdesk.store import outbox
from postdesk.store.db import Database

log = logging.getLogger("postdesk.outbox")

LEASE = timedelta(minutes=2)
"""Longer than one delivery attempt can take (the relay timeout), so a live sender never
loses its claim; short, so a crash delays the one claimed mail by at most this much."""


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool, unreachable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable
        """No mail can go now (relay down, disk full), not only this one."""


class Transport(Protocol):
    claim: int
    """Rows claimed at a time: as many as surely go out well within the lease."""

    def send(self, sender: str, recipients: list[str], content: bytes) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """For a single machine and for tests: each mail becomes a file in ``new/``."""

    claim = 50

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, create=True)

    def send(self, sender: str, recipients: list[str], content: bytes) -> None:
        try:
            self.maildir.add(content)
        except OSError as exc:
            raise DeliveryError(f"maildir: {exc}", permanent=False, unreachable=True) from exc

    def close(self) -> None:
        return None


class SmtpTransport:
    """One connection per delivery run, opened on first use; one row claimed at a time, as
    a relay may take its whole timeout over each."""

    claim = 1

    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay
        self.password = read_secret(relay, "outgoing.smtp")
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        relay = self.relay
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if relay.security == "tls":
            conn = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            conn = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
            if relay.security == "starttls":
                conn.starttls(context=context)
        if relay.username:
            conn.login(relay.username, self.password or "")
        return conn

    def send(self, sender: str, recipients: list[str], content: bytes) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            refused = self._conn.sendmail(sender, recipients, content)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"all recipients refused: {exc.recipients}", permanent=all(map(_permanent, codes))
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(
                f"{exc.smtp_code} {exc.smtp_error!r}", permanent=_permanent(exc.smtp_code)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(
                f"relay unreachable: {exc}", permanent=False, unreachable=True
            ) from exc
        if refused:
            log.warning("some recipients refused", extra={"refused": refused})

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None


def _permanent(code: int) -> bool:
    return code >= 500 and code != 552


def make_transport(settings: Settings) -> Transport:
    out = settings.outgoing
    if out.smtp is not None:
        return SmtpTransport(out.smtp)
    return MaildirTransport(out.maildir or settings.data_dir / "sent")


def backoff(attempts: int, out: Outgoing) -> timedelta:
    """Exponential from retry_base, capped at retry_max, with ±20 % jitter."""
    delay = min(out.retry_base * 2 ** max(attempts - 1, 0), out.retry_max)
    return delay * random.uniform(0.8, 1.2)


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def deliver_due(db: Database, settings: Settings, now: datetime | None = None) -> DeliveryStats:
    """Deliver every row due at ``now`` once; claimed rows are invisible to other senders.

    An unreachable relay ends the run: the rows not tried stay queued for a later one (those
    already claimed once their lease ends) instead of each waiting out a connection timeout
    and a backoff of its own.
    """
    run = _Run(db, settings, now or clock.now())
    try:
        while True:
            with db.transaction() as session:
                rows = [
                    (r.id, list(r.recipients), bytes(r.content), r.attempts)
                    for r in outbox.claim_due(session, run.now, LEASE, limit=run.transport.claim)
                ]
            if not rows:
                return run.stats
            for row in rows:
                if not run.deliver(*row):
                    return run.stats
    finally:
        run.transport.close()


class _Run:
    """One pass over the due rows, sharing a relay connection."""

    def __init__(self, db: Database, settings: Settings, now: datetime) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.transport = make_transport(settings)
        self.stats = DeliveryStats()

    def deliver(self, row_id: int, recipients: list[str], content: bytes, attempts: int) -> bool:
        """False when nothing more can go in this run."""
        try:
            self.transport.send(self.settings.support_addresses[0], recipients, content)
        except DeliveryError as exc:
            self._failed(row_id, attempts, exc)
            return not exc.unreachable
        with self.db.connect() as conn:
            outbox.mark_sent(conn, row_id, clock.now())
        self.stats.sent += 1
        log.info("mail delivered", extra={"outbox": row_id, "to": ",".join(recipients)})
        return True

    def _failed(self, row_id: int, attempts: int, exc: DeliveryError) -> None:
        out = self.settings.outgoing
        with self.db.connect() as conn:
            if exc.permanent or attempts >= out.max_attempts:
                outbox.mark_failed(conn, row_id, str(exc))
                self.stats.failed += 1
                log.error("delivery failed for good", extra={"outbox": row_id, "error": str(exc)})
                return
            retry_at = self.now + backoff(attempts, out)
            outbox.mark_retry(conn, row_id, str(exc), retry_at)
        self.stats.retried += 1
        log.warning(
            "delivery deferred",
            extra={"outbox": row_id, "error": str(exc), "retry_at": retry_at.isoformat()},
        )
