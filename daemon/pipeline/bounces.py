"""Bounces of our own mail: recorded on their ticket, failed addresses paused, agents told."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_notice
from postdesk.daemon.pipeline.result import Received
from postdesk.parsers.model import InboundMessage
from postdesk.store import suppressions
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event


def record_bounce(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    inbound: Received,
    now: datetime,
) -> None:
    """Our mail for this ticket bounced: note it, stop automatic mail there, tell the agents.

    The ticket is found by the signed token of our own Message-ID inside the bounce, which
    a forger cannot produce, so suppressing the failed addresses is safe.
    """
    failed = list(msg.bounced_recipients) or [ticket.requester]
    until = now + app.settings.autoreply.bounce_suppression
    for address in failed:
        suppressions.suppress(
            session, address, f"hard bounce on ticket #{ticket.number}", now, until
        )
    add_event(
        ticket,
        actor=msg.from_addr or "(none)",
        type="bounce",
        now=now,
        failed=failed,
        reason=msg.kind_reason,
        inbound=inbound.id,
    )
    recipients = [ticket.assignee] if ticket.assignee else app.settings.members_of(ticket.queue)
    queue = next((q for q in app.settings.queues if q.name == ticket.queue), None)
    if not recipients and queue and queue.escalation:
        recipients = [queue.escalation]
    body = (
        f"Mail for ticket #{ticket.number} ({ticket.subject}) could not be delivered to "
        f"{', '.join(failed)}.\nAutomatic mail to these addresses is paused until "
        f"{until:%Y-%m-%d}. Reach the customer another way if the problem is urgent."
    )
    for recipient in recipients:
        queue_notice(app, session, ticket, recipient, "undeliverable mail", body, now)
