"""Bounces of our own mail: recorded on their ticket, failed addresses paused, agents told."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_notice
from postdesk.daemon.pipeline.result import Received
from postdesk.parsers.model import InboundMessage
from postdesk.store import suppressions
from postdesk.store.models import Ticket
from postdesk.store.outbox import recipients_of
from postdesk.store.tickets import add_event

log = logging.getLogger("postdesk.bounces")


def record_bounce(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    inbound: Received,
    now: datetime,
) -> int:
    """Our mail for this ticket bounced: note it, stop automatic mail there, tell the agents;
    returns how many notices were queued, so that the sender is woken for them.

    The ticket is found by the signed token inside the bounce, but the addresses it lists
    are its sender's word: anyone may bounce our acknowledgement to them and list others.
    Only recipients of the mail we sent with a Message-ID the bounce quotes are paused.
    """
    sent_to = recipients_of(session, ticket.id, msg.sent_message_ids)
    listed = list(msg.bounced_recipients) or sorted(sent_to)
    failed = [a for a in listed if a in sent_to]
    strangers = [a for a in listed if a not in sent_to]
    if strangers:
        log.warning(
            "bounce lists addresses our mail was not sent to",
            extra={"ticket": ticket.number, "addresses": ",".join(strangers)},
        )
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
        not_our_recipients=strangers,
        message_ids=list(msg.sent_message_ids),
        reason=msg.kind_reason,
        inbound=inbound.id,
    )
    if not failed:
        return 0
    recipients = [ticket.assignee] if ticket.assignee else app.settings.members_of(ticket.queue)
    queue = next((q for q in app.settings.queues if q.name == ticket.queue), None)
    if not recipients and queue and queue.escalation:
        recipients = [queue.escalation]
    body = (
        f"Mail for ticket #{ticket.number} ({ticket.subject}) could not be delivered to "
        f"{', '.join(failed)}.\nAutomatic mail to these addresses is paused until "
        f"{until:%Y-%m-%d}. Reach the customer another way if the problem is urgent."
    )
    return sum(
        queue_notice(app, session, ticket, recipient, "undeliverable mail", body, now)
        for recipient in recipients
    )
