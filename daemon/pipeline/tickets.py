"""A customer's mail opens a ticket or joins one: participants, rules, the agents told."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.addresses import support_address
from postdesk.daemon.outgoing.compose import queue_agent_notification
from postdesk.daemon.pipeline.acknowledge import acknowledge
from postdesk.daemon.pipeline.result import (
    APPENDED,
    CREATED,
    QUARANTINED,
    RELEASED,
    IngestResult,
    Received,
    finish,
)
from postdesk.daemon.ticket_state import REOPENABLE
from postdesk.parsers.model import InboundMessage, Kind
from postdesk.parsers.references import base_address, token_tickets
from postdesk.rules.engine import Decision, evaluate
from postdesk.rules.matchers import Context
from postdesk.store.models import Message, Ticket
from postdesk.store.outbox import recipients_of
from postdesk.store.tickets import (
    Thread,
    add_event,
    add_participants,
    is_known_customer,
    newcomers,
    record_inbound,
    surviving,
)

MAX_COPIED = 20


def follow(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    thread: Thread,
    now: datetime,
) -> IngestResult:
    """A customer's mail joins its thread's ticket, reopening it within ``reopen_within``;
    later, or with no ticket, it opens a new one (linked to the old)."""
    ticket = thread.ticket
    if ticket is not None and ticket.status in REOPENABLE:
        ended = ticket.closed_at or ticket.resolved_at or ticket.updated_at
        if now - ended > app.settings.lifecycle.reopen_within:
            return create(app, session, inbound, msg, ticket, now)
    if ticket is not None:
        return append(app, session, inbound, ticket, msg, thread.how, now)
    return create(app, session, inbound, msg, thread.related, now)


@dataclass(frozen=True)
class Opening:
    """How a new ticket comes about when the customer's mail did not reach us itself: an
    agent forwarded it (DESIGN.md section 5, "Forward on behalf")."""

    agent: str
    """Who forwarded it: the assignee unless a rule assigns, and told of nothing they did."""
    brand: str
    """The support address the agent wrote to."""
    form: str
    sent_at: datetime | None = None
    """When the customer wrote it, as the forward says."""


@dataclass(frozen=True)
class Started:
    ticket: Ticket
    message: Message
    decision: Decision
    queued: int


def create(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    related: Ticket | None,
    now: datetime,
) -> IngestResult:
    started = start(app, session, inbound, msg, related, now)
    if isinstance(started, IngestResult):
        return started
    result = finish(session, inbound, CREATED, "", started.ticket)
    return IngestResult(
        result.outcome, result.ticket_number, started.decision.autoreply_reason, started.queued
    )


def start(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    related: Ticket | None,
    now: datetime,
    opening: Opening | None = None,
) -> Started | IngestResult:
    """A new ticket for the customer's mail as the rules sort it, acknowledged and the agents
    told; the quarantine's result when the rules call it spam. A forward an agent vouches
    for is never spam, gets the acknowledgement only with ``agents.forward_ack``, copies
    nobody from its fields, and is the forwarding agent's unless a rule assigns it."""
    settings = app.settings
    context = rules_context(app, session, msg, inbound.source, now)
    decision = evaluate(app.playbook.rules, msg, context)
    released = decision.spam and (inbound.source == RELEASED or opening is not None)
    if decision.spam and not released:
        return finish(
            session, inbound, QUARANTINED, f"spam by rules: {', '.join(decision.matched)}", None
        )
    if opening is not None:
        decision = vouched(decision, opening.agent)
    ticket = ticket_state.create(
        app,
        session,
        subject=msg.subject,
        requester=msg.from_addr,
        brand=opening.brand if opening else support_address(app, msg),
        decision=decision,
        related=related,
        now=now,
    )
    entries = [
        (msg.from_addr, "requester"),
        *((address, "cc") for address in (_copied(app, msg) if opening is None else [])),
        *((address, "watcher") for address in decision.watchers),
    ]
    add_participants(session, ticket, entries, app.own_addresses)
    sent_at = min(opening.sent_at, now) if opening and opening.sent_at else now
    message = record_inbound(
        session, ticket, msg, inbound_id=inbound.id, kind=str(msg.kind), now=sent_at
    )
    forward = {"forwarded_by": opening.agent, "form": opening.form} if opening else {}
    record_created(
        ticket, msg.from_addr, inbound, decision, now, defects=list(msg.defects), **forward
    )
    if released:  # the admin released it from the quarantine, or an agent forwarded it
        add_event(
            ticket,
            actor=opening.agent if opening else "admin",
            type="spam_released",
            now=now,
            rules=list(decision.matched),
            inbound=inbound.id,
        )
    if related is not None:
        add_event(
            ticket, actor="postdesk", type="possibly_related", now=now, related=related.number
        )
    if opening is None or settings.forward_ack:
        queued = acknowledge(app, session, ticket, msg, decision, now, is_new=True)
    else:
        reason = "forwarded by an agent (agents.forward_ack is off)"
        add_event(ticket, actor="postdesk", type="autoreply_suppressed", now=now, reason=reason)
        queued = 0
    if settings.notify.new_ticket:
        skip = opening.agent if opening else ""
        queued += notify_agents(app, session, ticket, "new ticket", message, now, skip=skip)
    return Started(ticket, message, decision, queued)


def record_created(
    ticket: Ticket,
    actor: str,
    inbound: Received,
    decision: Decision,
    now: datetime,
    **data: Any,
) -> None:
    """The ``created`` event: where the ticket came from and how the rules sorted it."""
    add_event(
        ticket,
        actor=actor,
        type="created",
        now=now,
        source=inbound.source,
        inbound=inbound.id,
        rules=list(decision.matched),
        queue=ticket.queue,
        priority=ticket.priority,
        **data,
    )


def vouched(decision: Decision, agent: str) -> Decision:
    """A ticket an agent opened for a customer is that agent's unless a rule assigns it."""
    if decision.assignee is None and not decision.assign:
        return replace(decision, assignee=agent)
    return decision


def append(
    app: App,
    session: Session,
    inbound: Received,
    ticket: Ticket,
    msg: InboundMessage,
    how: str,
    now: datetime,
) -> IngestResult:
    message = record_inbound(
        session, ticket, msg, inbound_id=inbound.id, kind=str(msg.kind), now=now
    )
    copied = _copied(app, msg)
    if saw_our_mail(app, session, ticket, msg):
        added = add_participants(session, ticket, [(a, "cc") for a in copied], app.own_addresses)
        withheld: list[str] = []
    else:
        added, withheld = [], newcomers(ticket, copied, app.own_addresses)
    before = ticket.status
    if msg.kind == Kind.CUSTOMER:
        ticket_state.customer_replied(app, ticket, now)
    add_event(
        ticket,
        actor=msg.from_addr,
        type="reopened" if before in REOPENABLE and ticket.status == "open" else "reply",
        now=now,
        via=how,
        inbound=inbound.id,
        status=[before, ticket.status],
        participants_added=added,
        participants_withheld=withheld,
        defects=list(msg.defects),
    )
    context = rules_context(app, session, msg, inbound.source, now, is_reply=True)
    decision = evaluate(app.playbook.rules, msg, context)
    if decision.matched:
        _apply_reply_rules(app, session, ticket, decision, now)
    queued = 0
    if app.settings.autoreply.on_followup and msg.kind == Kind.CUSTOMER:
        queued = acknowledge(app, session, ticket, msg, decision, now, is_new=False)
    if app.settings.notify.customer_reply:
        event = "reopened" if before in REOPENABLE else "customer reply"
        queued += notify_agents(app, session, ticket, event, message, now, withheld)
    result = finish(session, inbound, APPENDED, how, ticket)
    return IngestResult(result.outcome, result.ticket_number, how, queued)


def notify_agents(
    app: App,
    session: Session,
    ticket: Ticket,
    event: str,
    message: Message,
    now: datetime,
    withheld: Sequence[str] = (),
    skip: str = "",
) -> int:
    """The assignee, else the queue's members, hear of the customer's mail (and of the
    addresses it copied that were not made participants); ``skip`` is the agent who brought
    the mail in and knows it."""
    agents_to_tell = [ticket.assignee] if ticket.assignee else app.settings.members_of(ticket.queue)
    return sum(
        queue_agent_notification(app, session, ticket, agent, event, message, now, withheld)
        for agent in agents_to_tell
        if agent != skip
    )


def saw_our_mail(app: App, session: Session, ticket: Ticket, msg: InboundMessage) -> bool:
    """Whether the mail proves its sender saw our mail on this ticket (DESIGN.md 5a): the
    ticket's signed token in a recipient address, or a Message-ID we sent to the sender
    (a ticket merged into this one counts as this one). A subject tag, or the Message-ID of
    the customer's own mail, is known to anyone the customer wrote to, so it proves nothing
    about who may join."""
    if any(_same(session, t, ticket) for t in msg.reply_address_tickets):
        return True
    ours: dict[int, list[str]] = {}
    for ref in (*msg.in_reply_to, *msg.references):
        for sent_on in token_tickets(app.secret, (), (ref,)):
            ours.setdefault(sent_on, []).append(ref)
    return any(
        _same(session, sent_on, ticket) and msg.from_addr in recipients_of(session, sent_on, refs)
        for sent_on, refs in ours.items()
    )


def _same(session: Session, ticket_id: int, ticket: Ticket) -> bool:
    if ticket_id == ticket.id:
        return True
    named = session.get(Ticket, ticket_id)
    return named is not None and surviving(session, named).id == ticket.id


def _copied(app: App, msg: InboundMessage) -> list[str]:
    """The To and Cc addresses that become participants: a mail to thousands of addresses
    must not make our answers go to all of them, and when we were only a blind copy the
    people in To and Cc were never told we would write to them."""
    if blind_copy(app, msg):
        return []
    return [*msg.to, *msg.cc][:MAX_COPIED]


def blind_copy(app: App, msg: InboundMessage) -> bool:
    """A support address received the mail (envelope) but is in neither To nor Cc."""
    ours = app.own_addresses
    delivered = any(base_address(a) in ours for a in msg.envelope_to)
    return delivered and not any(base_address(a) in ours for a in (*msg.to, *msg.cc))


def rules_context(
    app: App,
    session: Session,
    msg: InboundMessage,
    source: str,
    now: datetime,
    is_reply: bool = False,
) -> Context:
    return Context(
        is_reply=is_reply,
        source=source,
        business_hours=app.playbook.calendar("").is_open(now),
        known_customer="known_customer" in app.playbook.rules.flags
        and is_known_customer(session, msg.from_addr),
        sender_is_agent=msg.from_addr in app.settings.agent_addresses,
    )


def _apply_reply_rules(
    app: App, session: Session, ticket: Ticket, decision: Decision, now: datetime
) -> None:
    """Only what the matching reply rules set changes; defaults never touch an open ticket."""
    changed, escalated = ticket_state.apply_changes(app, ticket, decision.changes, now)
    if escalated:
        add_event(ticket, actor="postdesk", type="escalated", now=now, queue=changed["queue"])
    watchers = [(address, "watcher") for address in decision.watchers]
    add_participants(session, ticket, watchers, app.own_addresses)
    add_event(
        ticket,
        actor="postdesk",
        type="rules_on_reply",
        now=now,
        rules=list(decision.matched),
        changed=changed,
    )
