"""SLA due times and the moments to warn or escalate, in the queue's business time.

Each ticket keeps one indexed ``sla_check_at``: the earliest warning or breach not yet
handled. A sweep then reads only tickets that are due, however many tickets there are.
"""

from __future__ import annotations

from datetime import datetime

from postdesk.daemon.app import App
from postdesk.store.models import Ticket

DONE = ("resolved", "closed")


def schedule(app: App, ticket: Ticket) -> None:
    """Due times from the SLA of the ticket's queue and priority, counted from its creation;
    called again when an agent changes either."""
    target = app.settings.sla_for(ticket.queue, ticket.priority)
    calendar = app.playbook.calendar(ticket.queue)
    ticket.first_response_due = (
        calendar.add(ticket.created_at, target.first_response) if target else None
    )
    ticket.resolution_due = calendar.add(ticket.created_at, target.resolution) if target else None
    reschedule(app, ticket)


def reschedule(app: App, ticket: Ticket) -> None:
    done = ticket.sla_flags or []
    pending = [at for flag, at in moments(app, ticket) if flag not in done]
    ticket.sla_check_at = min(pending) if pending and ticket.status not in DONE else None


def moments(app: App, ticket: Ticket) -> list[tuple[str, datetime]]:
    """(flag, when) for every SLA event still possible for this ticket."""
    share = app.settings.lifecycle.sla_warning_at
    calendar = app.playbook.calendar(ticket.queue)
    found = []
    for name, due, met in (
        ("first_response", ticket.first_response_due, ticket.first_response_at),
        ("resolution", ticket.resolution_due, ticket.resolved_at),
    ):
        if due is None or met is not None:
            continue
        if share:
            budget = calendar.between(ticket.created_at, due)
            found.append((f"{name}_warning", calendar.add(ticket.created_at, budget * share)))
        found.append((f"{name}_breach", due))
    return found
