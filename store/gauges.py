"""Queries behind the Prometheus gauges, read from the database on every scrape so that
every instance sharing it reports the same state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postdesk.store.models import Event, Ticket


def tickets_by_status(session: Session) -> dict[tuple[str, str], int]:
    """(status, queue) -> tickets, for the Prometheus gauge read on every scrape."""
    rows = session.execute(
        select(Ticket.status, Ticket.queue, func.count()).group_by(Ticket.status, Ticket.queue)
    )
    return {(status, queue): n for status, queue, n in rows}


def past_sla(session: Session, now: datetime) -> dict[str, int]:
    """Unfinished tickets whose first-response or resolution target has passed."""
    unfinished = Ticket.status.not_in(("resolved", "closed"))
    late_answer = select(func.count()).where(
        unfinished, Ticket.first_response_at.is_(None), Ticket.first_response_due < now
    )
    late_end = select(func.count()).where(unfinished, Ticket.resolution_due < now)
    return {
        "first_response": session.scalar(late_answer) or 0,
        "resolution": session.scalar(late_end) or 0,
    }


def sla_events(session: Session) -> dict[str, int]:
    """SLA warnings and breaches ever raised, by flag: a counter that only grows."""
    flag = Event.data["flag"].as_string()
    rows = session.execute(select(flag, func.count()).where(Event.type == "sla").group_by(flag))
    return {str(name): n for name, n in rows}
