"""Every change of a ticket's state goes through here: created, assigned, re-sorted, answered,
a customer's reply counted, reminded, scored, moved between statuses.

The status machine and its stamps are store/lifecycle.py's; this module adds what a change
means for the ticket's timers (SLA due times, the reminder cycle), which need the desk's
calendar. Callers record the event and queue the mail that follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from postdesk.daemon import sla
from postdesk.daemon.app import App
from postdesk.rules.engine import Changes, Decision
from postdesk.store import lifecycle
from postdesk.store.models import Ticket
from postdesk.store.tickets import move_records, next_number, open_ticket, pick_assignee

REOPENABLE = ("resolved", "closed")
WAITING = ("pending", "on_hold", *REOPENABLE)
"""Statuses a customer's reply takes back to ``open``."""


def create(
    app: App,
    session: Session,
    *,
    subject: str,
    requester: str,
    brand: str,
    decision: Decision,
    related: Ticket | None,
    now: datetime,
) -> Ticket:
    """A new ticket as the rules sorted it, its SLA due times set, inserted in the session;
    it speaks the brand's language unless a rule says otherwise."""
    settings = app.settings
    assignee = decision.assignee
    if assignee is None and decision.assign:
        members = settings.members_of(decision.queue)
        assignee = pick_assignee(session, members, decision.assign, decision.queue)
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
        subject=subject.strip() or "(no subject)",
        status="new",
        priority=decision.priority,
        queue=decision.queue,
        requester=requester,
        assignee=assignee,
        tags=sorted(set(decision.tags)),
        language=decision.language or settings.brand(brand).language or settings.language,
        matched_rules=list(decision.matched),
        created_at=now,
        updated_at=now,
        related_ticket_id=related.id if related else None,
        merged_into_id=None,
        brand=brand,
    )
    sla.schedule(app, ticket)
    open_ticket(session, ticket)
    return ticket


def move(app: App, ticket: Ticket, status: str, now: datetime) -> str:
    """Set the status (returns the previous one); entering ``pending`` starts the reminder
    cycle."""
    return lifecycle.move(ticket, status, now, app.reminder_at(ticket, now))


def close(app: App, ticket: Ticket, now: datetime) -> None:
    """Closed on a timer: no SLA moment is checked any more."""
    move(app, ticket, "closed", now)
    ticket.sla_check_at = None


def customer_replied(app: App, ticket: Ticket, now: datetime) -> str:
    """One more unanswered customer mail; a waiting ticket opens again (a resolved or closed
    one counts as reopened). Returns the status before."""
    before = ticket.status
    ticket.unanswered += 1
    if before in WAITING:
        move(app, ticket, "open", now)
        if before in REOPENABLE:
            ticket.reopen_count += 1
    return before


def answered(app: App, ticket: Ticket, author: str, now: datetime, *, status_given: bool) -> None:
    """An agent's answer went to the customer: the first-response clock stops, an unassigned
    ticket may become the author's, and unless the agent set a status the ticket waits on
    the customer."""
    ticket.first_response_at = ticket.first_response_at or now
    ticket.unanswered = 0
    if ticket.assignee is None and app.settings.assign_on_first_answer:
        ticket.assignee = author
    ticket.updated_at = now
    sla.reschedule(app, ticket)
    if not status_given:
        move(app, ticket, "pending", now)


def touch(ticket: Ticket, now: datetime) -> None:
    """Something about the ticket changed that has no field of its own (a participant)."""
    ticket.updated_at = now


def assign(ticket: Ticket, agent: str | None, now: datetime) -> None:
    ticket.assignee = agent
    ticket.updated_at = now


def set_priority(app: App, ticket: Ticket, priority: str, now: datetime) -> None:
    """SLA targets follow the priority, counted from the ticket's creation."""
    ticket.priority = priority
    ticket.updated_at = now
    sla.schedule(app, ticket)


def set_queue(app: App, ticket: Ticket, queue: str, now: datetime) -> bool:
    """A queue may have its own SLA and business hours: due times are counted again.
    Returns whether the move is an escalation (to a queue of a higher line)."""
    line = app.settings.line_of
    escalation = line(queue) > line(ticket.queue)
    ticket.queue = queue
    ticket.updated_at = now
    sla.schedule(app, ticket)
    return escalation


def set_tags(ticket: Ticket, tags: Iterable[str], now: datetime) -> None:
    ticket.tags = sorted(set(tags))
    ticket.updated_at = now


def apply_changes(
    app: App, ticket: Ticket, changes: Changes, now: datetime
) -> tuple[dict[str, list[str | None]], bool]:
    """What reply rules set, and nothing else; returns each changed field as [before, after]
    and whether the ticket moved to a higher line."""
    before = {"queue": ticket.queue, "priority": ticket.priority, "assignee": ticket.assignee}
    escalated = False
    if changes.queue and changes.queue != ticket.queue:
        escalated = set_queue(app, ticket, changes.queue, now)
    if changes.priority and changes.priority != ticket.priority:
        set_priority(app, ticket, changes.priority, now)
    if changes.assignee:
        assign(ticket, changes.assignee, now)
    if changes.tags:
        set_tags(ticket, [*ticket.tags, *changes.tags], now)
    after = {"queue": ticket.queue, "priority": ticket.priority, "assignee": ticket.assignee}
    return {k: [before[k], after[k]] for k in before if before[k] != after[k]}, escalated


def merge(app: App, session: Session, duplicate: Ticket, into: Ticket, now: datetime) -> None:
    """The duplicate's mail, people and history move into the other ticket; the duplicate is
    closed and points there, so that later mail naming it finds the right ticket."""
    move_records(session, duplicate, into)
    duplicate.merged_into_id = into.id
    close(app, duplicate, now)
    into.updated_at = now


def reminded(app: App, ticket: Ticket, number: int, now: datetime) -> None:
    """Reminder ``number`` went out; the next one is due a reminder delay from now."""
    ticket.reminders_sent = number
    ticket.next_reminder_at = app.reminder_at(ticket, now)


def sla_flagged(app: App, ticket: Ticket, flags: list[str]) -> None:
    """The SLA moments already handled; the next check is the earliest one left."""
    ticket.sla_flags = flags
    sla.reschedule(app, ticket)


def hold_sweeps(ticket: Ticket, until: datetime) -> None:
    """A sweep failed on this ticket: the timed work leaves it alone until then."""
    ticket.sweep_hold_until = until


def scored(ticket: Ticket, score: int) -> None:
    ticket.csat_score = score
