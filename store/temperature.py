"""One number that orders the work: hotter tickets first."""

from __future__ import annotations

from datetime import datetime

from postdesk.store.models import Ticket

PRIORITY_HEAT = {"urgent": 40.0, "high": 30.0, "normal": 20.0, "low": 10.0}
CLOSED_STATES = ("resolved", "closed")


def temperature(ticket: Ticket, now: datetime) -> float:
    """Priority, the share of the running SLA already used, customer mails still waiting for
    an answer, age and reopens."""
    if ticket.status in CLOSED_STATES:
        return 0.0
    heat = PRIORITY_HEAT.get(ticket.priority, 20.0)
    due = ticket.first_response_due if ticket.first_response_at is None else ticket.resolution_due
    if due is not None and due > ticket.created_at:
        used = (now - ticket.created_at) / (due - ticket.created_at)
        heat += 30.0 * min(max(used, 0.0), 2.0)
    heat += min((now - ticket.created_at).total_seconds() / 86400.0, 10.0)
    heat += 4.0 * min(ticket.unanswered or 0, 5)
    heat += 5.0 * ticket.reopen_count
    return round(heat, 1)
