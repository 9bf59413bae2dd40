"""Support figures for a period [since, until): what `postdesk report` shows and mails.

Counts of events, surveys and replies are grouped in SQL; ticket durations come back per
ticket, because business time needs each ticket's queue calendar and percentiles need the
values. Ticket stamps are the current ones: a ticket reopened later no longer counts as
resolved in an earlier period (reopening clears ``resolved_at``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from postdesk.store.figures import (
    DETRACTOR,
    NO_THRESHOLDS,
    PROMOTER,
    UNASSIGNED,
    AgentFigures,
    Daily,
    Report,
    Tally,
    Thresholds,
    histogram,
)
from postdesk.store.models import Event, Message, Outbox, Ticket

BusinessTime = Callable[[str], Callable[[datetime, datetime], timedelta]]
"""queue -> its calendar's ``between(start, end)``; store cannot import the calendars."""


FIRST_AUTHOR = (
    select(Message.author)
    .where(Message.ticket_id == Ticket.id, Message.kind == "agent", Message.direction == "out")
    .order_by(Message.created_at, Message.id)
    .limit(1)
    .correlate(Ticket)
    .scalar_subquery()
)
"""A ticket belongs to the agent who first answered it: whoever it was assigned to, the
answer is that agent's work."""

GROUPINGS: dict[str, Any] = {
    "queue": Ticket.queue,
    "priority": Ticket.priority,
    "agent": FIRST_AUTHOR,
}


def report(
    session: Session,
    since: datetime,
    until: datetime,
    business: BusinessTime,
    by: str | None = None,
    thresholds: Thresholds = NO_THRESHOLDS,
) -> Report:
    # Ungrouped, SQL still groups by queue (a literal key trips PostgreSQL); tallies() sums it.
    column = GROUPINGS[by or "queue"]
    overall = Tally()
    groups: dict[str, Tally] = {}

    def tallies(key: str | None) -> tuple[Tally, ...]:
        if by is None:
            return (overall,)
        return overall, groups.setdefault(key or UNASSIGNED, Tally())

    one_reply = _one_reply(session, since, until)
    daily = Daily(since, until)
    first_responses: list[float] = []
    for row in session.execute(_tickets(column, since, until)):
        first = _count_ticket(
            row, tallies(row.key), since, until, business, row.id in one_reply, thresholds
        )
        if first is not None:
            first_responses.append(first)
        daily.add(row.created_at, _done(row))
    _count_events(session, column, since, until, tallies, daily, thresholds)
    for key, sent in session.execute(
        select(column.label("key"), func.count())
        .select_from(Outbox)
        .join(Ticket, Ticket.id == Outbox.ticket_id)
        .where(Outbox.kind == "survey", Outbox.created_at >= since, Outbox.created_at < until)
        .group_by(column)
    ):
        for tally in tallies(key):
            tally.surveys_sent += sent
    return Report(
        since=since,
        until=until,
        by=by,
        overall=overall.figures(thresholds),
        groups={key: groups[key].figures(thresholds) for key in sorted(groups)},
        agents=_agents(session, since, until),
        days=daily.days(),
        first_response_histogram=histogram(first_responses),
    )


def _tickets(column: Any, since: datetime, until: datetime) -> Any:
    """Every ticket that counts in the period: created, answered or ended in it, or open.
    A ticket merged into another is none of its own: its mail and history are there now, and
    its close by the merge is nobody's resolution."""
    return select(
        column.label("key"),
        Ticket.id,
        Ticket.queue,
        Ticket.created_at,
        Ticket.first_response_at,
        Ticket.first_response_due,
        Ticket.resolution_due,
        Ticket.resolved_at,
        Ticket.closed_at,
        Ticket.reopen_count,
        Ticket.sla_flags,
    ).where(
        Ticket.created_at < until,
        Ticket.merged_into_id.is_(None),
        or_(
            Ticket.created_at >= since,
            Ticket.first_response_at >= since,
            Ticket.resolved_at >= since,
            Ticket.closed_at >= since,
            and_(Ticket.resolved_at.is_(None), Ticket.closed_at.is_(None)),
        ),
    )


def _done(row: Any) -> datetime | None:
    done: datetime | None = row.resolved_at or row.closed_at
    return done


def _count_ticket(
    row: Any,
    tallies: tuple[Tally, ...],
    since: datetime,
    until: datetime,
    business: BusinessTime,
    one_reply: bool,
    thresholds: Thresholds,
) -> float | None:
    """Add one ticket to its tallies; returns its first-response seconds if in the period."""
    flags = set(row.sla_flags or ())
    done = _done(row)
    between = business(row.queue)
    first = None
    if row.first_response_at is not None and since <= row.first_response_at < until:
        first = (row.first_response_at - row.created_at).total_seconds()
        first_business = between(row.created_at, row.first_response_at).total_seconds()
    resolved = row.resolved_at is not None and since <= row.resolved_at < until
    if resolved:
        took = (row.resolved_at - row.created_at).total_seconds()
        took_business = between(row.created_at, row.resolved_at).total_seconds()
    open_at_end = done is None or done >= until
    past_sla = open_at_end and (
        (row.resolution_due is not None and row.resolution_due < until)
        or (
            row.first_response_due is not None
            and row.first_response_due < until
            and (row.first_response_at is None or row.first_response_at >= until)
        )
    )
    for tally in tallies:
        if row.created_at >= since:
            tally.created += 1
            tally.created_resolved += not open_at_end
            tally.sla_flags.update(flags)
        if first is not None:
            tally.first_response.append(first)
            tally.first_response_business.append(first_business)
            tally.first_response_breached += "first_response_breach" in flags
            tally.first_within.update(
                label
                for label, limit in thresholds.first_response.items()
                if first_business <= limit
            )
        if resolved:
            tally.resolved += 1
            tally.resolution.append(took)
            tally.resolution_business.append(took_business)
            tally.resolution_breached += "resolution_breach" in flags
            tally.one_reply += one_reply and row.reopen_count == 0
            tally.reopened += row.reopen_count > 0
            tally.resolved_within.update(
                label for label, limit in thresholds.resolution.items() if took_business <= limit
            )
        if row.closed_at is not None and since <= row.closed_at < until:
            tally.closed += 1
        tally.backlog += open_at_end
        tally.backlog_past_sla += past_sla
    return first


def _one_reply(session: Session, since: datetime, until: datetime) -> set[int]:
    """Tickets resolved in the period with exactly one agent reply: first-contact resolution."""
    return set(
        session.scalars(
            select(Message.ticket_id)
            .join(Ticket, Ticket.id == Message.ticket_id)
            .where(
                Ticket.resolved_at >= since,
                Ticket.resolved_at < until,
                Message.kind == "agent",
                Message.direction == "out",
            )
            .group_by(Message.ticket_id)
            .having(func.count() == 1)
        )
    )


def _count_events(
    session: Session,
    column: Any,
    since: datetime,
    until: datetime,
    tallies: Callable[[str | None], tuple[Tally, ...]],
    daily: Daily,
    thresholds: Thresholds,
) -> None:
    in_period = (Event.at >= since, Event.at < until)
    for key, escalated in session.execute(
        select(column.label("key"), func.count(Event.ticket_id.distinct()))
        .select_from(Event)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(
            Event.type == "escalated",
            Event.at < until,
            Ticket.created_at >= since,
            Ticket.created_at < until,
        )
        .group_by(column)
    ):
        for tally in tallies(key):
            tally.escalated += escalated
    for key, sent in session.execute(
        select(column.label("key"), func.count())
        .select_from(Event)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(Event.type == "autoreply_queued", *in_period)
        .group_by(column)
    ):
        for tally in tallies(key):
            tally.autoreplies_sent += sent
    for key, kind, at, data in session.execute(
        select(column.label("key"), Event.type, Event.at, Event.data)
        .select_from(Event)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(Event.type.in_(("autoreply_suppressed", "survey_answer")), *in_period)
    ):
        for tally in tallies(key):
            if kind == "autoreply_suppressed":
                tally.suppressed[str(data.get("reason", ""))] += 1
            else:
                score = int(data.get("score", 0))
                tally.answered += 1
                tally.satisfied += score >= thresholds.satisfied_from
                tally.promoters += score >= PROMOTER
                tally.detractors += score <= DETRACTOR
        if kind == "survey_answer":
            daily.answer(at, int(data.get("score", 0)) >= thresholds.satisfied_from)


def _agents(session: Session, since: datetime, until: datetime) -> list[AgentFigures]:
    """Answers and tickets answered, by the agent who wrote them."""
    rows = session.execute(
        select(Message.author, func.count(), func.count(Message.ticket_id.distinct()))
        .where(
            Message.kind == "agent",
            Message.direction == "out",
            Message.created_at >= since,
            Message.created_at < until,
        )
        .group_by(Message.author)
    )
    found = [
        AgentFigures(agent or UNASSIGNED, replies, tickets) for agent, replies, tickets in rows
    ]
    return sorted(found, key=lambda a: (-a.replies, a.agent))
