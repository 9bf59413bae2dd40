"""Pending tickets with no word from the customer: a reminder, then the next, then closing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import render_ticket_mail, send_to_customer
from postdesk.daemon.sweeps.closing import close
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event


def remind(app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats) -> None:
    total = app.settings.lifecycle.max_reminders
    if ticket.reminders_sent >= total:
        close(app, session, ticket, now, stats, f"no answer to {total} reminders")
        return
    number = ticket.reminders_sent + 1
    last = next((m.body for m in reversed(ticket.messages) if m.kind == "agent"), "")
    variables = {"number": number, "total": total, "final": number == total, "last_answer": last}
    send_to_customer(
        app,
        session,
        ticket,
        render_ticket_mail(app, ticket, "reminder", variables),
        "reminder",
        now,
    )
    ticket_state.reminded(app, ticket, number, now)
    add_event(ticket, actor="postdesk", type="reminder", now=now, number=number)
    stats.reminders += 1
