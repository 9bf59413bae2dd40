"""Deliver queued mail through an SMTP relay or into a Maildir, with retries and backoff.

Temporary and permanent failures are kept apart: codes of 500 and up (except 552) are
permanent and end the row as failed; anything else keeps it queued with exponential
backoff and jitter until `outgoing.max_attempts`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from postdesk.config.schema import Outgoing, Settings
from postdesk.daemon import clock
from postdesk.daemon.runners.transports import DeliveryError, make_transport
from postdesk.store import outbox
from postdesk.store.db import Database

log = logging.getLogger("postdesk.outbox")


LEASE = timedelta(minutes=2)
"""Longer than one delivery attempt can take (the relay timeout), so a live sender never
loses its claim; short, so a crash delays the one claimed mail by at most this much."""


def backoff(attempts: int, out: Outgoing) -> timedelta:
    """Exponential from retry_base, capped at retry_max, with ±20 % jitter."""
    delay: timedelta = min(out.retry_base * 2 ** max(attempts - 1, 0), out.retry_max)
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
