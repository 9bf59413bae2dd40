"""SLA warnings and breaches as their moments pass: the assignee warned, the queue's
escalation address (or the managers, or the admin) told of a breach."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon import sla, ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_notice
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event


def check_sla(app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats) -> None:
    flags = list(ticket.sla_flags or [])
    for flag, at in sla.moments(app, ticket):
        if flag in flags or at > now:
            continue
        flags.append(flag)
        breach = flag.endswith("_breach")
        what = flag.replace("_", " ")
        body = (
            f"Ticket #{ticket.number} ({ticket.priority}, queue {ticket.queue}, assignee "
            f"{ticket.assignee or 'nobody'}): {what} at {at.isoformat(timespec='minutes')}.\n"
            f"Requester: {ticket.requester}. Status: {ticket.status}."
        )
        for recipient in _escalation(app, ticket, breach):
            queue_notice(app, session, ticket, recipient, f"SLA {what}", body, now)
        add_event(ticket, actor="postdesk", type="sla", now=now, flag=flag, due=at.isoformat())
        if breach:
            stats.sla_breaches += 1
        else:
            stats.sla_warnings += 1
    ticket_state.sla_flagged(app, ticket, flags)


def _escalation(app: App, ticket: Ticket, breach: bool) -> list[str]:
    """Warnings go to the assignee; breaches also to the queue's escalation address (or the
    managers, or the admin)."""
    settings = app.settings
    found = [ticket.assignee] if ticket.assignee else []
    if breach or not found:
        chain = [q.escalation for q in settings.queue_chain(ticket.queue) if q.escalation]
        fallback = settings.lifecycle.managers or settings.admin_address
        found += chain[:1] or ([fallback] if fallback else [])
    return list(dict.fromkeys(found))
