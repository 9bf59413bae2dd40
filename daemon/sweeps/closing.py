"""Closing a ticket on a timer: the closing notice, with the survey when it is due."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.closing import send_closing_notice, survey_due
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event


def close(
    app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats, why: str
) -> None:
    ticket_state.close(app, ticket, now)
    survey = survey_due(app, session, ticket, "auto_close")
    send_closing_notice(app, session, ticket, now, survey=survey)
    add_event(ticket, actor="postdesk", type="auto_closed", now=now, reason=why)
    stats.closed += 1
