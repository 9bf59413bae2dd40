"""Survey answers: a signed mailto link clicked by the customer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.pipeline.result import SUPPRESSED, IngestResult, Received, finish
from postdesk.parsers.model import InboundMessage
from postdesk.parsers.references import verify_survey_token
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event


def survey_answer(
    app: App, session: Session, inbound: Received, msg: InboundMessage, now: datetime
) -> IngestResult:
    """A click on a survey link: recorded once on its ticket; never a ticket, never answered."""
    for token in msg.survey_tokens:
        found = verify_survey_token(app.secret, token)
        ticket = session.get(Ticket, found[0]) if found else None
        if found is None or ticket is None:
            continue
        if ticket.csat_score is not None:
            add_event(
                ticket,
                actor=msg.from_addr,
                type="survey_repeated",
                now=now,
                score=found[1],
                kept=ticket.csat_score,
            )
            return finish(session, inbound, SUPPRESSED, "survey already answered", ticket)
        ticket_state.scored(ticket, found[1])
        comment = msg.new_text.strip()[:2000]
        add_event(
            ticket,
            actor=msg.from_addr,
            type="survey_answer",
            now=now,
            score=found[1],
            comment=comment,
        )
        return finish(session, inbound, SUPPRESSED, f"survey answer {found[1]}", ticket)
    return finish(session, inbound, SUPPRESSED, "survey answer with no valid token", None)
