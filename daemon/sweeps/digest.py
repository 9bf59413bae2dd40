"""The morning digest of tickets that have had no assignee for too long."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_internal
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.store import due
from postdesk.store.temperature import temperature

URGENT_FIRST = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def digest(app: App, now: datetime, stats: SweepStats) -> None:
    """Once a day after `lifecycle.digest_at` (desk time): unassigned tickets to the managers."""
    lifecycle = app.settings.lifecycle
    managers = lifecycle.managers or app.settings.admin_address
    zone = app.playbook.calendar("").zone
    local = now.astimezone(zone)
    if not managers or local.time() < time.fromisoformat(lifecycle.digest_at):
        return
    with app.db.transaction() as session:
        if not due.claim_day(session, "digest", int(local.strftime("%Y%m%d"))):
            return
        waiting = due.unassigned(session, now - lifecycle.unassigned_after)
        if not waiting:
            return
        waiting = sorted(waiting, key=lambda t: (URGENT_FIRST.get(t.priority, 2), t.created_at))
        lines = [
            f"{len(waiting)} tickets have had no assignee for over {lifecycle.unassigned_after}:",
            "",
        ]
        for ticket in waiting:
            mark = "!! " if ticket.priority in ("urgent", "high") else "   "
            age = now - ticket.created_at
            state = ", ".join(ticket.sla_flags or []) or "within SLA"
            lines.append(
                f"{mark}#{ticket.number} [{ticket.priority}] {ticket.subject[:60]} — "
                f"{ticket.queue}, {_age(age)} old, {state}, temperature {temperature(ticket, now)}"
            )
        queue_internal(
            app, session, managers, "unassigned tickets", "\n".join(lines), now, "notice"
        )
        stats.digests += 1


def _age(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"
