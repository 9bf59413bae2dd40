"""Timed work, run by the scheduler every minute and by `postdesk sweep --now`.

Each kind of work reads only rows whose indexed due time has passed, claims them, acts, and
moves their due time on, all in one transaction with the mail it queues. Run twice for the
same moment, a sweep does nothing the second time; run by two daemons at once, each row is
handled by one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon.app import App
from postdesk.daemon.sweeps.closing import close
from postdesk.daemon.sweeps.digest import digest
from postdesk.daemon.sweeps.reminders import remind
from postdesk.daemon.sweeps.sla import check_sla
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.daemon.sweeps.weekly import weekly_report
from postdesk.store import due
from postdesk.store.models import Ticket

log = logging.getLogger("postdesk.sweep")


BATCH = 200


def run(app: App, now: datetime) -> SweepStats:
    stats = SweepStats()
    lifecycle = app.settings.lifecycle
    drain(
        app,
        lambda s: due.due_reminders(s, now, BATCH),
        lambda s, t: remind(app, s, t, now, stats),
    )
    drain(
        app,
        lambda s: due.due_closures(s, now - lifecycle.close_resolved_after, BATCH),
        lambda s, t: close(
            app, s, t, now, stats, f"resolved ticket closed after {lifecycle.close_resolved_after}"
        ),
    )
    drain(app, lambda s: due.due_sla(s, now, BATCH), lambda s, t: check_sla(app, s, t, now, stats))
    digest(app, now, stats)
    weekly_report(app, now, stats)
    if any(asdict(stats).values()):
        log.info("sweep done", extra=asdict(stats))
    return stats


def drain(
    app: App,
    claim: Callable[[Session], Sequence[Ticket]],
    act: Callable[[Session, Ticket], None],
) -> None:
    """Claim and handle batches until nothing is due; every act moves its row's due time."""
    while True:
        with app.db.transaction() as session:
            rows = claim(session)
            for ticket in rows:
                act(session, ticket)
        if len(rows) < BATCH:
            return
