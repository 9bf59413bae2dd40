"""Deliver queued mail through an SMTP relay or into a Maildir.

Relay faults pause, never fail: a connection, TLS or authentication failure, a 4xx or a
disk that takes no file stops the run, the mail stays queued with its try uncounted, and
every sender (all instances, `send-outbox`) waits out one pause that grows with each fault
in a row (`outgoing.retry_base` doubling up to `retry_max`); the admin is alerted. Only a
permanent answer about one mail fails that mail. 552, and an unexpected exception while
sending one row, retry that row alone with backoff until `outgoing.max_attempts`.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from postdesk.config.schema import Outgoing
from postdesk.daemon import clock
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_alert
from postdesk.daemon.runners.transports import DeliveryError, RelayFault, make_transport
from postdesk.store import outbox, relay
from postdesk.store.outbox import Queued

log = logging.getLogger("postdesk.outbox")


LEASE = timedelta(minutes=2)
"""Longer than one delivery attempt can take (the relay timeout), so a live sender never
loses its claim; short, so another instance takes over a dead one's claims soon."""


def backoff(attempts: int, out: Outgoing) -> timedelta:
    """Exponential from retry_base, capped at retry_max, with ±20 % jitter."""
    delay: timedelta = min(out.retry_base * 2 ** max(attempts - 1, 0), out.retry_max)
    return delay * random.uniform(0.8, 1.2)


def one_shot_holder(app: App) -> str:
    """Claims of a command that runs once (`send-outbox`, `ingest`) are its own, so the
    daemon of the same instance never takes them over while that command still sends."""
    return f"{app.settings.instance}:{os.getpid()}"


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    paused: bool = False
    """A relay fault paused delivery (during this run or before it)."""


def deliver_due(app: App, now: datetime | None = None, holder: str | None = None) -> DeliveryStats:
    """Deliver every row due at ``now`` once, claimed in ``holder``'s name (the daemon's
    is the instance name); nothing at all while the transport is paused."""
    run = _Run(app, now or clock.now(), holder or one_shot_holder(app))
    try:
        while True:
            with app.db.transaction() as session:
                if relay.paused(session, run.transport.name, run.now):
                    run.stats.paused = True
                    return run.stats
                rows = outbox.claim_due(
                    session, run.now, LEASE, run.holder, limit=run.transport.claim
                )
            if not rows:
                return run.stats
            for i, mail in enumerate(rows):
                if not run.deliver(mail):
                    run.release([taken for taken, _ in run.taken] + rows[i:])
                    return run.stats
            if not run.settle():
                return run.stats
    finally:
        run.transport.close()


class _Run:
    """One pass over the due rows, sharing a relay connection."""

    def __init__(self, app: App, now: datetime, holder: str) -> None:
        self.app = app
        self.out = app.settings.outgoing
        self.now = now
        self.holder = holder
        self.transport = make_transport(app.settings)
        self.stats = DeliveryStats()
        self.delivered = False
        self.taken: list[tuple[Queued, str]] = []
        """Taken by the transport, not yet settled and marked sent."""

    def _envelope_sender(self, mail: Queued) -> str:
        own = self.app.own_addresses
        return mail.sender if mail.sender in own else self.app.settings.support_addresses[0]

    def deliver(self, mail: Queued) -> bool:
        """False on a relay fault: nothing more can go in this run."""
        try:
            refused = self.transport.send(self._envelope_sender(mail), mail)
        except RelayFault as exc:
            self._pause(exc)
            return False
        except DeliveryError as exc:
            self._failed(mail, str(exc), exc.permanent)
            return True
        except Exception as exc:  # a bug or a poison row: this row counts a try, others go on
            log.exception("delivery raised unexpectedly", extra={"outbox": mail.row_id})
            self._failed(mail, f"unexpected error: {exc!r}", permanent=False)
            self._alert(
                f"outbox mail #{mail.row_id} could not be sent",
                f"Sending outbox mail #{mail.row_id} raised {exc!r}; see the log. It is "
                f"retried until outgoing.max_attempts ({self.out.max_attempts}); "
                "`postdesk outbox show` has the details.",
            )
            return True
        self.taken.append((mail, refused))
        return True

    def settle(self) -> bool:
        """The rows the transport took are made durable there, then marked sent in one
        commit: a crash before it repeats only these, and a Maildir finds their files and
        writes none twice. False on a relay fault: they are released to go again."""
        taken, self.taken = self.taken, []
        if not taken:
            return True
        try:
            self.transport.settle()
        except RelayFault as exc:
            self._pause(exc)
            self.release([mail for mail, _ in taken])
            return False
        with self.app.db.transaction() as session:
            conn = session.connection()
            for mail, refused in taken:
                outbox.mark_sent(conn, mail.row_id, clock.now(), refused)
            # the run's first delivery ends a pause, in the same commit as its rows
            ended = None if self.delivered else relay.recovered(session, self.transport.name)
        self.delivered = True
        for mail, refused in taken:
            self.stats.sent += 1
            fields = {"outbox": mail.row_id, "to": ",".join(mail.recipients)}
            extra = {**fields, "refused": refused} if refused else fields
            log.info("mail delivered", extra=extra)
        if ended is not None:
            log.warning(
                "relay takes mail again; delivery resumed",
                extra={
                    "transport": self.transport.name,
                    "faults_in_a_row": ended.failures,
                    "paused_since": ended.paused_since.isoformat() if ended.paused_since else None,
                },
            )
        return True

    def release(self, mails: list[Queued]) -> None:
        """The rows claimed but not sent, their try uncounted: due as before, so they go
        first, in order, as soon as the pause ends (by time or by `outbox retry`)."""
        with self.app.db.connect() as conn:
            outbox.release(conn, [m.row_id for m in mails], self.now)

    def _pause(self, exc: RelayFault) -> None:
        name = self.transport.name
        with self.app.db.transaction() as session:
            state = relay.fault(session, name, str(exc), self.now, lambda n: backoff(n, self.out))
            failures, until = state.failures, state.paused_until
        self.stats.paused = True
        self.stats.retried += 1
        assert until is not None
        fields = {
            "transport": name,
            "error": str(exc),
            "faults_in_a_row": failures,
            "paused_until": until.isoformat(),
        }
        log.error("relay fault: all delivery paused", extra=fields)
        self._alert(
            f"outgoing mail paused: {exc}",
            f"Delivery through {name} failed: {exc}\n"
            f"Nothing is lost: all outgoing mail stays queued and is tried again at "
            f"{until:%Y-%m-%d %H:%M:%S} UTC ({failures} fault(s) in a row). This alert "
            "itself leaves once the relay takes mail again. `postdesk outbox retry --failed` "
            "also ends the pause at once.",
            relay_down=True,
        )

    def _failed(self, mail: Queued, error: str, permanent: bool) -> None:
        with self.app.db.connect() as conn:
            if permanent or mail.attempts >= self.out.max_attempts:
                outbox.mark_failed(conn, mail.row_id, error)
                self.stats.failed += 1
                log.error(
                    "delivery failed for good",
                    extra={"outbox": mail.row_id, "error": error, "attempts": mail.attempts},
                )
                return
            retry_at = self.now + backoff(mail.attempts, self.out)
            outbox.mark_retry(conn, mail.row_id, error, retry_at)
        self.stats.retried += 1
        log.warning(
            "delivery deferred",
            extra={"outbox": mail.row_id, "error": error, "retry_at": retry_at.isoformat()},
        )

    def _alert(self, subject: str, body: str, *, relay_down: bool = False) -> None:
        """Queued for the admin (at most one alert an hour); when the relay itself is down
        the alert cannot leave yet, and the log line above is what tells."""
        with self.app.db.transaction() as session:
            queued = queue_alert(self.app, session, subject, body, self.now)
        if queued and relay_down:
            log.error(
                "admin alert queued but cannot be sent while the relay is down",
                extra={"alert": subject},
            )
