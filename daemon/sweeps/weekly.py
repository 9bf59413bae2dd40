"""Monday's report of the past week to the managers."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_internal
from postdesk.daemon.reporting import report
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.store import due


def weekly_report(app: App, now: datetime, stats: SweepStats) -> None:
    """On Mondays after `lifecycle.digest_at`: last week's figures to the managers, once."""
    lifecycle = app.settings.lifecycle
    managers = lifecycle.managers
    local = now.astimezone(app.playbook.calendar("").zone)
    if (
        not managers
        or local.weekday() != 0
        or local.time() < time.fromisoformat(lifecycle.digest_at)
    ):
        return
    figures = report.build(app, now - timedelta(days=7), now)
    with app.db.transaction() as session:
        if not due.claim_day(session, "weekly_report", int(local.strftime("%Y%m%d"))):
            return
        queue_internal(
            app,
            session,
            managers,
            "weekly support report",
            report.render(figures, "table"),
            now,
            "notice",
            html=report.render(figures, "html"),
        )
    stats.reports += 1
