"""Timed work, run by the scheduler every minute and by `postdesk sweep --now`.

Each kind of work reads only rows whose indexed due time has passed, claims them, acts, and
moves their due time on, all in one transaction with the mail it queues. Run twice for the
same moment, a sweep does nothing the second time; run by two daemons at once, each row is
handled by one of them.

One bad row never blocks the others: each ticket is handled under a savepoint of its own.
A ticket that raises is rolled back alone, gets a `sweep_failed` event, is held for
SWEEP_RETRY (no sweep takes it before then), and the admin is alerted (at most one alert an
hour); the rest of the batch goes on. A step that is not per ticket (digest, weekly report)
that raises is logged and alerted, and the other steps still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from postdesk.config.errors import TemporaryFailure
from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_alert
from postdesk.daemon.sweeps.closing import close
from postdesk.daemon.sweeps.digest import digest
from postdesk.daemon.sweeps.reminders import remind
from postdesk.daemon.sweeps.sla import check_sla
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.daemon.sweeps.weekly import weekly_report
from postdesk.store import due
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event

log = logging.getLogger("postdesk.sweep")


BATCH = 200
SWEEP_RETRY = timedelta(minutes=15)
"""How long a ticket a sweep failed on waits before the next try: long enough that a
lasting fault costs one log line a quarter hour, not one a minute."""

UNRECOVERABLE = (TemporaryFailure, OperationalError)
"""The database itself is gone: no row can be recorded, so the whole run stops."""


def run(app: App, now: datetime) -> SweepStats:
    stats = SweepStats()
    lifecycle = app.settings.lifecycle
    drain(
        app,
        "reminder",
        now,
        stats,
        lambda s: due.due_reminders(s, now, BATCH),
        lambda s, t: remind(app, s, t, now, stats),
    )
    drain(
        app,
        "closing",
        now,
        stats,
        lambda s: due.due_closures(s, now, now - lifecycle.close_resolved_after, BATCH),
        lambda s, t: close(
            app, s, t, now, stats, f"resolved ticket closed after {lifecycle.close_resolved_after}"
        ),
    )
    drain(
        app,
        "sla",
        now,
        stats,
        lambda s: due.due_sla(s, now, BATCH),
        lambda s, t: check_sla(app, s, t, now, stats),
    )
    for name, step in (("digest", digest), ("weekly report", weekly_report)):
        try:
            step(app, now, stats)
        except UNRECOVERABLE:
            raise
        except Exception as exc:
            stats.failed += 1
            log.exception("sweep step failed; the next sweep retries it", extra={"step": name})
            with app.db.transaction() as session:
                queue_alert(
                    app, session, f"{name} failed", f"The {name} raised {exc!r}; see the log.", now
                )
    if any(asdict(stats).values()):
        log.info("sweep done", extra=asdict(stats))
    return stats


def drain(
    app: App,
    kind: str,
    now: datetime,
    stats: SweepStats,
    claim: Callable[[Session], Sequence[Ticket]],
    act: Callable[[Session, Ticket], None],
) -> None:
    """Claim and handle batches until nothing is due; every act moves its row's due time,
    and a failed act holds its row, so no batch sees a row twice."""
    while True:
        with app.db.transaction() as session:
            rows = claim(session)
            for ticket in rows:
                try:
                    with session.begin_nested():
                        act(session, ticket)
                except UNRECOVERABLE:
                    raise
                except Exception as exc:
                    _failed(app, session, kind, ticket, exc, now)
                    stats.failed += 1
        if len(rows) < BATCH:
            return


def _failed(
    app: App, session: Session, kind: str, ticket: Ticket, exc: Exception, now: datetime
) -> None:
    """Recorded on the ticket, held, alerted; the savepoint already undid the act's changes."""
    retry_at = now + SWEEP_RETRY
    fields = {"ticket": ticket.number, "sweep": kind, "retry_at": retry_at.isoformat()}
    log.error("sweep failed on one ticket; the others go on", extra=fields, exc_info=exc)
    ticket_state.hold_sweeps(ticket, retry_at)
    add_event(
        ticket,
        actor="postdesk",
        type="sweep_failed",
        now=now,
        sweep=kind,
        error=repr(exc)[:500],
        retry_at=retry_at.isoformat(),
    )
    queue_alert(
        app,
        session,
        f"{kind} sweep failed on ticket #{ticket.number}",
        f"The {kind} sweep raised {exc!r} on ticket #{ticket.number}; see the log. The "
        f"ticket is tried again after {retry_at:%Y-%m-%d %H:%M} UTC; the other tickets "
        "were handled.",
        now,
    )
