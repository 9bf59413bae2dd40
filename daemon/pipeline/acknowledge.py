"""Whether a customer's mail gets an acknowledgement: rules, then the policy with its history
and circuit breakers; the decision is an event on the ticket either way."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from postdesk.autoreplies.policy import History, decide
from postdesk.config.schema import Autoreply
from postdesk.daemon.app import App
from postdesk.daemon.counters import AUTOREPLY_DECISIONS
from postdesk.daemon.outgoing.compose import (
    AUTOREPLIES,
    CUSTOMER_AUTOMATIC,
    queue_acknowledgement,
    queue_alert,
)
from postdesk.parsers.model import InboundMessage
from postdesk.rules.engine import Decision
from postdesk.store import outbox, suppressions
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event

log = logging.getLogger("postdesk.ingest")


def _history(
    session: Session, ticket: Ticket, now: datetime, limits: Autoreply, is_new: bool
) -> History:
    """Counted before this transaction's own rows are flushed: they are not history yet.
    A ticket created by this message has no mail of its own to count."""
    with session.no_autoflush:
        found = outbox.autoreply_history(
            session,
            address=ticket.requester,
            ticket_id=None if is_new else ticket.id,
            own_kinds=AUTOREPLIES,
            all_kinds=CUSTOMER_AUTOMATIC,
            now=now,
            cap=limits.circuit_breaker_per_hour,
        )
    until = found.suppressed_until
    return History(
        to_sender_last_day=found.to_sender_last_day,
        for_ticket_last_hour=found.for_ticket_last_hour,
        total_last_hour=found.total_last_hour,
        suppressed=f"{found.suppressed_reason} (until {until:%Y-%m-%d %H:%M} UTC)"
        if until is not None
        else "",
    )


def _trip_breaker(
    app: App, session: Session, ticket: Ticket, breaker: str, reason: str, now: datetime
) -> None:
    """Tell the admin (once an hour at most); a sender's breaker also pauses automatic mail
    to that address for a day, while the total one holds only as long as the volume does."""
    if breaker == "sender":
        suppressions.suppress(
            session,
            ticket.requester,
            f"{suppressions.BREAKER} {reason}",
            now,
            now + timedelta(days=1),
        )
        subject = f"automatic mail stopped for {ticket.requester}"
    else:
        subject = "automatic mail to customers stopped"
    if queue_alert(app, session, subject, reason, now):
        log.warning(
            "autoreply circuit breaker", extra={"address": ticket.requester, "reason": reason}
        )


def acknowledge(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    decision: Decision,
    now: datetime,
    *,
    is_new: bool,
) -> int:
    """Queue the acknowledgement if rules and policy allow; the decision is recorded either way."""
    settings = app.settings
    template = decision.autoreply
    if template is None:
        reason = decision.autoreply_reason or "suppressed by rules"
    else:
        verdict = decide(
            msg,
            own_addresses=app.own_addresses,
            history=_history(session, ticket, now, settings.autoreply, is_new),
            limits=settings.autoreply,
            is_new_ticket=is_new,
            when=settings.autoreply_when_for(ticket.queue),
            in_business_hours=app.playbook.calendar(ticket.queue).is_open(now),
            loop_marker=app.loop_marker,
        )
        reason = verdict.reason
        if verdict.breaker:
            _trip_breaker(app, session, ticket, verdict.breaker, reason, now)
    if template is None or reason:
        add_event(ticket, actor="postdesk", type="autoreply_suppressed", now=now, reason=reason)
        AUTOREPLY_DECISIONS.inc("rules" if template is None else "policy")
        return 0
    AUTOREPLY_DECISIONS.inc("sent")
    queue_acknowledgement(app, session, ticket, msg, template, decision, now)
    add_event(ticket, actor="postdesk", type="autoreply_queued", now=now, template=template)
    return 1
