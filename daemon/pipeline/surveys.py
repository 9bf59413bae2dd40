"""Survey answers: a signed mailto link clicked by the customer.

The link is in a mail that may be forwarded, so holding it proves nothing: only the ticket's
requester answers. Anyone else's answer is a security event and changes nothing, so it can
never block the customer's own. Words the customer writes beside the score are a message to
the desk, handled as a customer reply.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.pipeline.result import SUPPRESSED, IngestResult, Received, finish
from postdesk.daemon.pipeline.tickets import follow
from postdesk.parsers.model import InboundMessage, Kind
from postdesk.parsers.references import verify_survey_token
from postdesk.store.models import Ticket
from postdesk.store.tickets import Thread, add_event

log = logging.getLogger("postdesk.surveys")


def survey_answer(
    app: App, session: Session, inbound: Received, msg: InboundMessage, now: datetime
) -> IngestResult:
    """A click on a survey link: the first score of the requester counts; a comment beside
    it joins the ticket as the customer's mail (and may reopen it)."""
    for token in msg.survey_tokens:
        found = verify_survey_token(app.secret, token)
        ticket = session.get(Ticket, found[0]) if found else None
        if found is None or ticket is None:
            continue
        score = found[1]
        if msg.from_addr != ticket.requester:
            return _stranger(session, inbound, ticket, msg, score, now)
        comment = msg.new_text.strip()
        repeated = ticket.csat_score is not None
        if not repeated:
            ticket_state.scored(ticket, score)
            add_event(
                ticket,
                actor=msg.from_addr,
                type="survey_answer",
                now=now,
                score=score,
                comment=comment[:2000],
            )
        else:
            add_event(
                ticket,
                actor=msg.from_addr,
                type="survey_repeated",
                now=now,
                score=score,
                kept=ticket.csat_score,
            )
        if comment:
            customer_mail = dataclasses.replace(msg, kind=Kind.CUSTOMER)
            return follow(app, session, inbound, customer_mail, Thread(ticket, "survey"), now)
        reason = "survey already answered" if repeated else f"survey answer {score}"
        return finish(session, inbound, SUPPRESSED, reason, ticket)
    return finish(session, inbound, SUPPRESSED, "survey answer with no valid token", None)


def _stranger(
    session: Session,
    inbound: Received,
    ticket: Ticket,
    msg: InboundMessage,
    score: int,
    now: datetime,
) -> IngestResult:
    log.warning(
        "survey answer not from the requester",
        extra={"ticket": ticket.number, "from": msg.from_addr, "message_id": msg.message_id},
    )
    add_event(
        ticket,
        actor=msg.from_addr or "(none)",
        type="security",
        now=now,
        inbound=inbound.id,
        score=score,
        reason="survey answer from someone other than the requester: ignored",
    )
    return finish(session, inbound, SUPPRESSED, "survey answer not from the requester", ticket)
