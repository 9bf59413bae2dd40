"""One raw message through the whole flow, in one transaction: store, parse, thread, rules, reply.

The raw bytes reach disk (fsync) and the database before the caller answers 250 or exits
0; a second delivery of the same bytes, or of the same Message-ID from the same sender,
is recognised and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postdesk.autoreplies.policy import History, decide
from postdesk.config.errors import BadData, TemporaryFailure
from postdesk.config.schema import Autoreply
from postdesk.daemon import agents, clock, sla
from postdesk.daemon.app import App
from postdesk.daemon.mail import (
    AUTOMATIC,
    AUTOREPLIES,
    queue_acknowledgement,
    queue_agent_notification,
    queue_alert,
    queue_notice,
)
from postdesk.daemon.prometheus import AUTOREPLY_DECISIONS, INGESTED
from postdesk.parsers import parse
from postdesk.parsers.model import InboundMessage, Kind
from postdesk.parsers.references import verify_survey_token
from postdesk.rules.engine import Decision, evaluate
from postdesk.rules.matchers import Context
from postdesk.store import inbound as received_rows
from postdesk.store import outbox, suppressions
from postdesk.store.db import run
from postdesk.store.lifecycle import move
from postdesk.store.models import Inbound, Message, Ticket
from postdesk.store.tickets import (
    add_event,
    add_participants,
    find_thread,
    is_known_customer,
    next_number,
    open_ticket,
    pick_assignee,
    record_inbound,
)

log = logging.getLogger("postdesk.ingest")

CREATED, APPENDED, DUPLICATE = "ticket_created", "appended", "duplicate"
QUARANTINED, SUPPRESSED = "quarantined", "suppressed"
REOPENABLE = ("resolved", "closed")
MAX_COPIED = 20


@dataclass(frozen=True)
class IngestResult:
    outcome: str
    ticket_number: int | None = None
    reason: str = ""
    queued_mail: int = 0


SAME_BYTES = IngestResult(DUPLICATE, reason="same bytes already received")


@dataclass(frozen=True)
class Received:
    """The inbound row of the message being processed."""

    id: int
    source: str


def ingest(app: App, raw: bytes, source: str, now: datetime | None = None) -> IngestResult:
    """Store and process one message; TemporaryFailure means nothing was committed.

    The raw file is written first (a second write of the same bytes is free), and whether the
    bytes were seen before is asked inside the one transaction that records them, so a
    message costs one transaction.
    """
    now = now or clock.now()
    sha256 = hashlib.sha256(raw).hexdigest()
    app.raw.put(raw)
    try:
        msg = parse(raw, app.parse_context())
    except BadData as exc:
        return _quarantine(app, sha256, raw, source, str(exc), now)
    except TemporaryFailure:
        raise
    except Exception as exc:
        log.exception("parser failed", extra={"sha256": sha256})
        return _quarantine(app, sha256, raw, source, f"parser error: {exc!r}", now)
    try:
        with app.db.transaction() as session:
            result = _process(app, session, msg, source, now)
    except IntegrityError:
        return IngestResult(DUPLICATE, reason="received concurrently by another process")
    INGESTED.labels(source, result.outcome).inc()
    log.info(
        "message ingested",
        extra={
            "source": source,
            "outcome": result.outcome,
            "ticket": result.ticket_number,
            "reason": result.reason,
            "message_id": msg.message_id,
        },
    )
    return result


def _known(session: Session, sha256: str) -> bool:
    return session.scalar(select(Inbound.id).where(Inbound.sha256 == sha256)) is not None


def _quarantine(
    app: App, sha256: str, raw: bytes, source: str, reason: str, now: datetime
) -> IngestResult:
    try:
        with app.db.transaction() as session:
            if _known(session, sha256):
                return SAME_BYTES
            received_rows.receive(
                session,
                sha256=sha256,
                source=source,
                size=len(raw),
                received_at=now,
                status=QUARANTINED,
                reason=reason,
            )
    except IntegrityError:
        return IngestResult(DUPLICATE, reason="received concurrently by another process")
    log.warning("message quarantined", extra={"sha256": sha256, "reason": reason})
    return IngestResult(QUARANTINED, reason=reason)


def _process(
    app: App, session: Session, msg: InboundMessage, source: str, now: datetime
) -> IngestResult:
    seen, original = _seen(session, msg)
    if seen:
        return SAME_BYTES
    row = {
        "sha256": msg.raw_sha256,
        "message_id": msg.message_id,
        "from_addr": msg.from_addr,
        "subject": msg.subject[:2000],
        "source": source,
        "size": msg.size,
        "received_at": now,
    }
    if original is not None:
        reason = f"same Message-ID as inbound #{original}"
        received_rows.receive(session, **row, status=DUPLICATE, reason=reason)
        return IngestResult(DUPLICATE, reason=reason)
    inbound = Received(received_rows.receive(session, **row, status=""), source)
    thread = find_thread(session, msg, app.settings.agent_addresses)
    if msg.kind == Kind.BOUNCE and msg.token_tickets:
        bounced = session.get(Ticket, msg.token_tickets[0])
        if bounced is not None:
            _record_bounce(app, session, bounced, msg, inbound, now)
            return _finish(
                session, inbound, SUPPRESSED, f"bounce of our mail: {msg.kind_reason}", bounced
            )
    if msg.kind == Kind.SURVEY_ANSWER:
        return _survey_answer(app, session, inbound, msg, now)
    if msg.kind == Kind.AGENT:
        ticket_id = agents.token_ticket(app, msg)
        target = session.get(Ticket, ticket_id) if ticket_id else thread.ticket
        if target is not None:
            reason, queued = agents.handle(app, session, target, msg, inbound.id, now)
            _finish(session, inbound, APPENDED, reason, target)
            return IngestResult(APPENDED, target.number, reason, queued)
    if msg.kind not in (Kind.CUSTOMER, Kind.AGENT):
        if thread.ticket is not None:
            add_event(
                thread.ticket,
                actor=msg.from_addr or "(none)",
                type="automatic_mail",
                now=now,
                kind=str(msg.kind),
                reason=msg.kind_reason,
                inbound=inbound.id,
            )
        return _finish(
            session, inbound, SUPPRESSED, f"{msg.kind}: {msg.kind_reason}", thread.ticket
        )
    ticket = thread.ticket
    if ticket is not None and ticket.status in REOPENABLE:
        ended = ticket.closed_at or ticket.resolved_at or ticket.updated_at
        if now - ended > app.settings.lifecycle.reopen_within:
            thread = type(thread)(None, "", related=ticket)
            ticket = None
    if ticket is not None:
        return _append(app, session, inbound, ticket, msg, thread.how, now)
    return _create(app, session, inbound, msg, thread.related, now)


SEEN = select(Inbound.id, Inbound.sha256).where(
    or_(
        Inbound.sha256 == bindparam("sha256"),
        and_(
            Inbound.message_id == bindparam("message_id"), Inbound.from_addr == bindparam("sender")
        ),
    )
)
"""Built once, as it is asked for every message."""


def _seen(session: Session, msg: InboundMessage) -> tuple[bool, int | None]:
    """Whether these exact bytes were received before, else an earlier inbound with the same
    Message-ID from the same sender (a copy re-encoded on the way), asked in one query."""
    rows = run(
        session,
        SEEN,
        {"sha256": msg.raw_sha256, "message_id": msg.message_id or None, "sender": msg.from_addr},
    ).all()
    if any(sha256 == msg.raw_sha256 for _, sha256 in rows):
        return True, None
    return False, min((row_id for row_id, _ in rows), default=None)


def _finish(
    session: Session, inbound: Received, status: str, reason: str, ticket: Ticket | None
) -> IngestResult:
    received_rows.settle(session, inbound.id, status, reason, ticket.id if ticket else None)
    return IngestResult(status, ticket.number if ticket else None, reason)


def _create(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    related: Ticket | None,
    now: datetime,
) -> IngestResult:
    settings = app.settings
    decision = evaluate(app.policy.rules, msg, _context(app, session, msg, inbound.source, now))
    if decision.spam:
        return _finish(
            session, inbound, QUARANTINED, f"spam by rules: {', '.join(decision.matched)}", None
        )
    ticket = Ticket(
        sla_flags=[],
        reminders_sent=0,
        reopen_count=0,
        unanswered=1,
        first_response_at=None,
        resolved_at=None,
        closed_at=None,
        next_reminder_at=None,
        csat_score=None,
        number=next_number(session),
        subject=msg.subject.strip() or "(no subject)",
        status="new",
        priority=decision.priority,
        queue=decision.queue,
        requester=msg.from_addr,
        assignee=decision.assignee
        or pick_assignee(
            session, settings.members_of(decision.queue), decision.assign or "", decision.queue
        )
        if decision.assignee or decision.assign
        else None,
        tags=sorted(set(decision.tags)),
        language=decision.language or settings.language,
        matched_rules=list(decision.matched),
        created_at=now,
        updated_at=now,
        related_ticket_id=related.id if related else None,
    )
    sla.schedule(app, ticket)
    open_ticket(session, ticket)
    entries = [
        (msg.from_addr, "requester"),
        *((address, "cc") for address in _copied(msg)),
        *((address, "watcher") for address in decision.watchers),
    ]
    add_participants(session, ticket, entries, app.own_addresses)
    message = record_inbound(
        session, ticket, msg, inbound_id=inbound.id, kind=str(msg.kind), now=now
    )
    add_event(
        ticket,
        actor=msg.from_addr,
        type="created",
        now=now,
        source=inbound.source,
        inbound=inbound.id,
        rules=list(decision.matched),
        queue=ticket.queue,
        priority=ticket.priority,
        defects=list(msg.defects),
    )
    if related is not None:
        add_event(
            ticket, actor="postdesk", type="possibly_related", now=now, related=related.number
        )
    queued = _acknowledge(app, session, ticket, msg, decision, now, is_new=True)
    if settings.notify.new_ticket:
        queued += _notify(app, session, ticket, "new ticket", message, now)
    result = _finish(session, inbound, CREATED, "", ticket)
    return IngestResult(result.outcome, result.ticket_number, decision.autoreply_reason, queued)


def _append(
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
    added = add_participants(
        session, ticket, [(address, "cc") for address in _copied(msg)], app.own_addresses
    )
    before = ticket.status
    if msg.kind == Kind.CUSTOMER:
        ticket.unanswered += 1
    if msg.kind == Kind.CUSTOMER and before in ("pending", "on_hold", *REOPENABLE):
        move(ticket, "open", now)
        if before in REOPENABLE:
            ticket.reopen_count += 1
    add_event(
        ticket,
        actor=msg.from_addr,
        type="reopened" if before in REOPENABLE and ticket.status == "open" else "reply",
        now=now,
        via=how,
        inbound=inbound.id,
        status=[before, ticket.status],
        participants_added=added,
        defects=list(msg.defects),
    )
    decision = evaluate(
        app.policy.rules, msg, _context(app, session, msg, inbound.source, now, is_reply=True)
    )
    if decision.matched:
        _apply_reply_rules(app, session, ticket, decision, now)
    queued = 0
    if app.settings.autoreply.on_followup and msg.kind == Kind.CUSTOMER:
        queued = _acknowledge(app, session, ticket, msg, decision, now, is_new=False)
    if app.settings.notify.customer_reply:
        event = "reopened" if before in REOPENABLE else "customer reply"
        queued += _notify(app, session, ticket, event, message, now)
    result = _finish(session, inbound, APPENDED, how, ticket)
    return IngestResult(result.outcome, result.ticket_number, how, queued)


def _notify(
    app: App, session: Session, ticket: Ticket, event: str, message: Message, now: datetime
) -> int:
    """The assignee, else the queue's members, hear of the customer's mail."""
    agents_to_tell = [ticket.assignee] if ticket.assignee else app.settings.members_of(ticket.queue)
    for agent in agents_to_tell:
        queue_agent_notification(app, session, ticket, agent, event, message, now)
    return len(agents_to_tell)


def _copied(msg: InboundMessage) -> list[str]:
    """The To and Cc addresses that become participants: a mail to thousands of addresses
    must not make our answers go to all of them."""
    return [*msg.to, *msg.cc][:MAX_COPIED]


def _context(
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
        business_hours=app.policy.calendar("").is_open(now),
        known_customer="known_customer" in app.policy.rules.flags
        and is_known_customer(session, msg.from_addr),
        sender_is_agent=msg.from_addr in app.settings.agent_addresses,
    )


def _apply_reply_rules(
    app: App, session: Session, ticket: Ticket, decision: Decision, now: datetime
) -> None:
    """Only what the matching reply rules name changes; defaults never touch an open ticket."""
    rules = {r.name: r for r in app.policy.rules.rules}
    before = {"queue": ticket.queue, "priority": ticket.priority, "assignee": ticket.assignee}
    for name in decision.matched:
        then = rules[name].actions
        ticket.queue = then.queue or ticket.queue
        ticket.priority = then.priority or ticket.priority
        ticket.assignee = then.assignee or ticket.assignee
        ticket.tags = sorted({*ticket.tags, *then.tags})
    watchers = [(address, "watcher") for address in decision.watchers]
    add_participants(session, ticket, watchers, app.own_addresses)
    after = {"queue": ticket.queue, "priority": ticket.priority, "assignee": ticket.assignee}
    add_event(
        ticket,
        actor="postdesk",
        type="rules_on_reply",
        now=now,
        rules=list(decision.matched),
        changed={k: [before[k], after[k]] for k in before if before[k] != after[k]},
    )


def _survey_answer(
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
            return _finish(session, inbound, SUPPRESSED, "survey already answered", ticket)
        ticket.csat_score = found[1]
        comment = msg.new_text.strip()[:2000]
        add_event(
            ticket,
            actor=msg.from_addr,
            type="survey_answer",
            now=now,
            score=found[1],
            comment=comment,
        )
        return _finish(session, inbound, SUPPRESSED, f"survey answer {found[1]}", ticket)
    return _finish(session, inbound, SUPPRESSED, "survey answer with no valid token", None)


def _record_bounce(
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


def _history(
    session: Session, ticket: Ticket, now: datetime, limits: Autoreply, is_new: bool
) -> History:
    """Counted before this transaction's own rows are flushed: they are not history yet.
    A ticket created by this message has no mail of its own to count."""
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    with session.no_autoflush:
        blocked = suppressions.active(session, ticket.requester, now)
        return History(
            to_sender_last_day=outbox.count_recent(
                session, AUTOREPLIES, day, to_addr=ticket.requester
            ),
            for_ticket_last_hour=0
            if is_new
            else outbox.count_recent(session, AUTOREPLIES, hour, ticket_id=ticket.id),
            total_last_hour=outbox.count_recent(
                session, AUTOMATIC, hour, cap=limits.circuit_breaker_per_hour
            ),
            suppressed=f"{blocked.reason} (until {blocked.until:%Y-%m-%d %H:%M} UTC)"
            if blocked
            else "",
        )


def _trip_breaker(
    app: App, session: Session, ticket: Ticket, breaker: str, reason: str, now: datetime
) -> None:
    """Tell the admin (once an hour at most); a sender's breaker also pauses automatic mail
    to that address for a day, while the total one holds only as long as the volume does."""
    if breaker == "sender":
        suppressions.suppress(
            session, ticket.requester, f"circuit breaker: {reason}", now, now + timedelta(days=1)
        )
        subject = f"automatic mail stopped for {ticket.requester}"
    else:
        subject = "all automatic mail stopped"
    if queue_alert(app, session, subject, reason, now):
        log.warning(
            "autoreply circuit breaker", extra={"address": ticket.requester, "reason": reason}
        )


def _acknowledge(
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
            in_business_hours=app.policy.calendar(ticket.queue).is_open(now),
            loop_marker=app.loop_marker,
        )
        reason = verdict.reason
        if verdict.breaker:
            _trip_breaker(app, session, ticket, verdict.breaker, reason, now)
    if template is None or reason:
        add_event(ticket, actor="postdesk", type="autoreply_suppressed", now=now, reason=reason)
        AUTOREPLY_DECISIONS.labels("rules" if template is None else "policy").inc()
        return 0
    AUTOREPLY_DECISIONS.labels("sent").inc()
    queue_acknowledgement(app, session, ticket, msg, template, decision, now)
    add_event(ticket, actor="postdesk", type="autoreply_queued", now=now, template=template)
    return 1
