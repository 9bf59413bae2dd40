"""Support figures for a period [since, until): what `postdesk report` shows and mails.

Counts of events, surveys and replies are grouped in SQL; ticket durations come back per
ticket, because business time needs each ticket's queue calendar and percentiles need the
values. Ticket stamps are the current ones: a ticket reopened later no longer counts as
resolved in an earlier period (reopening clears ``resolved_at``).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from postdesk.store.models import Event, Message, Outbox, Ticket

BusinessTime = Callable[[str], Callable[[datetime, datetime], timedelta]]
"""queue -> its calendar's ``between(start, end)``; store cannot import the calendars."""

GROUPINGS: dict[str, Any] = {
    "queue": Ticket.queue,
    "priority": Ticket.priority,
    "agent": Ticket.assignee,
}
UNASSIGNED = "(unassigned)"
HISTOGRAM_HOURS = (1, 2, 4, 8, 24, 48)
"""Upper bounds of the first-response histogram buckets; the last bucket is open."""
SATISFIED = 4


@dataclass
class Durations:
    """Seconds; None when nothing was measured."""

    count: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Durations:
        if not values:
            return cls()
        ordered = sorted(values)
        return cls(
            len(ordered),
            statistics.fmean(ordered),
            statistics.median(ordered),
            percentile(ordered, 0.9),
        )


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: a value that really occurred, as SLA reports quote it."""
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Figures:
    """One column of the report. Cohorts: tickets created, first answered, resolved and
    closed in the period; backlog is the state at ``until``."""

    created: int
    resolved: int
    closed: int
    first_response: Durations
    first_response_business: Durations
    resolution: Durations
    resolution_business: Durations
    first_response_within_sla: float | None
    resolution_within_sla: float | None
    sla_flags: dict[str, int]
    """Tickets created in the period that carry each SLA flag."""
    resolution_rate: float | None
    """Tickets created in the period that were resolved before ``until``."""
    first_contact_resolution: float | None
    """Resolved tickets with exactly one agent reply."""
    reopen_rate: float | None
    """Resolved tickets that were reopened at least once."""
    backlog: int
    backlog_past_sla: int
    autoreplies_sent: int
    autoreplies_suppressed: dict[str, int]
    surveys_sent: int
    surveys_answered: int
    satisfied: int
    csat: float | None
    survey_response_rate: float | None


@dataclass
class _Tally:
    """What one group adds up before it becomes `Figures`."""

    created: int = 0
    created_resolved: int = 0
    resolved: int = 0
    closed: int = 0
    first_response: list[float] = field(default_factory=list)
    first_response_business: list[float] = field(default_factory=list)
    first_response_breached: int = 0
    resolution: list[float] = field(default_factory=list)
    resolution_business: list[float] = field(default_factory=list)
    resolution_breached: int = 0
    one_reply: int = 0
    reopened: int = 0
    sla_flags: Counter[str] = field(default_factory=Counter)
    backlog: int = 0
    backlog_past_sla: int = 0
    autoreplies_sent: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    surveys_sent: int = 0
    answered: int = 0
    satisfied: int = 0

    def figures(self) -> Figures:
        answered = len(self.first_response)
        return Figures(
            created=self.created,
            resolved=self.resolved,
            closed=self.closed,
            first_response=Durations.of(self.first_response),
            first_response_business=Durations.of(self.first_response_business),
            resolution=Durations.of(self.resolution),
            resolution_business=Durations.of(self.resolution_business),
            first_response_within_sla=ratio(answered - self.first_response_breached, answered),
            resolution_within_sla=ratio(self.resolved - self.resolution_breached, self.resolved),
            sla_flags=dict(sorted(self.sla_flags.items())),
            resolution_rate=ratio(self.created_resolved, self.created),
            first_contact_resolution=ratio(self.one_reply, self.resolved),
            reopen_rate=ratio(self.reopened, self.resolved),
            backlog=self.backlog,
            backlog_past_sla=self.backlog_past_sla,
            autoreplies_sent=self.autoreplies_sent,
            autoreplies_suppressed=dict(self.suppressed.most_common()),
            surveys_sent=self.surveys_sent,
            surveys_answered=self.answered,
            satisfied=self.satisfied,
            csat=ratio(self.satisfied, self.answered),
            survey_response_rate=ratio(self.answered, self.surveys_sent),
        )


@dataclass
class AgentFigures:
    agent: str
    replies: int
    tickets: int


@dataclass
class Day:
    """One UTC day of the period, for the trend charts."""

    day: date
    created: int
    resolved: int
    backlog: int
    surveys_answered: int
    satisfied: int


@dataclass
class Report:
    since: datetime
    until: datetime
    by: str | None
    overall: Figures
    groups: dict[str, Figures]
    agents: list[AgentFigures]
    days: list[Day]
    first_response_histogram: list[tuple[str, int]]
    """Calendar first-response times of the period in buckets of hours."""


def report(
    session: Session,
    since: datetime,
    until: datetime,
    business: BusinessTime,
    by: str | None = None,
) -> Report:
    # Ungrouped, SQL still groups by queue (a literal key trips PostgreSQL); tallies() sums it.
    column = GROUPINGS[by or "queue"]
    overall = _Tally()
    groups: dict[str, _Tally] = {}

    def tallies(key: str | None) -> tuple[_Tally, ...]:
        if by is None:
            return (overall,)
        return overall, groups.setdefault(key or UNASSIGNED, _Tally())

    one_reply = _one_reply(session, since, until)
    daily = _Daily(since, until)
    first_responses: list[float] = []
    for row in session.execute(_tickets(column, since, until)):
        first = _count_ticket(row, tallies(row.key), since, until, business, row.id in one_reply)
        if first is not None:
            first_responses.append(first)
        daily.add(row.created_at, _done(row))
    _count_events(session, column, since, until, tallies, daily)
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
        overall=overall.figures(),
        groups={key: groups[key].figures() for key in sorted(groups)},
        agents=_agents(session, since, until),
        days=daily.days(),
        first_response_histogram=_histogram(first_responses),
    )


def _tickets(column: Any, since: datetime, until: datetime) -> Any:
    """Every ticket that counts in the period: created, answered or ended in it, or open."""
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
        or_(
            Ticket.created_at >= since,
            Ticket.first_response_at >= since,
            Ticket.resolved_at >= since,
            Ticket.closed_at >= since,
            and_(Ticket.resolved_at.is_(None), Ticket.closed_at.is_(None)),
        ),
    )


def _done(row: Any) -> datetime | None:
    return row.resolved_at or row.closed_at


def _count_ticket(
    row: Any,
    tallies: tuple[_Tally, ...],
    since: datetime,
    until: datetime,
    business: BusinessTime,
    one_reply: bool,
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
        if resolved:
            tally.resolved += 1
            tally.resolution.append(took)
            tally.resolution_business.append(took_business)
            tally.resolution_breached += "resolution_breach" in flags
            tally.one_reply += one_reply
            tally.reopened += row.reopen_count > 0
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
    tallies: Callable[[str | None], tuple[_Tally, ...]],
    daily: _Daily,
) -> None:
    in_period = (Event.at >= since, Event.at < until)
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
                tally.answered += 1
                tally.satisfied += data.get("score", 0) >= SATISFIED
        if kind == "survey_answer":
            daily.answer(at, data.get("score", 0) >= SATISFIED)


def _agents(session: Session, since: datetime, until: datetime) -> list[AgentFigures]:
    rows = session.execute(
        select(Message.from_addr, func.count(), func.count(Message.ticket_id.distinct()))
        .where(
            Message.kind == "agent",
            Message.direction == "out",
            Message.created_at >= since,
            Message.created_at < until,
        )
        .group_by(Message.from_addr)
    )
    found = [AgentFigures(agent, replies, tickets) for agent, replies, tickets in rows]
    return sorted(found, key=lambda a: (-a.replies, a.agent))


def _histogram(seconds: list[float]) -> list[tuple[str, int]]:
    counts = [0] * (len(HISTOGRAM_HOURS) + 1)
    for value in seconds:
        counts[bisect.bisect_left(HISTOGRAM_HOURS, value / 3600)] += 1
    lows = (0, *HISTOGRAM_HOURS)
    labels = [f"{low}-{high}h" for low, high in zip(lows, HISTOGRAM_HOURS, strict=False)]
    return list(zip([*labels, f">{HISTOGRAM_HOURS[-1]}h"], counts, strict=True))


class _Daily:
    """Per-UTC-day counts; backlog at each day's end is created-before minus done-before."""

    def __init__(self, since: datetime, until: datetime) -> None:
        first = since.astimezone(UTC).date()
        last = (until - timedelta(microseconds=1)).astimezone(UTC).date()
        self.dates = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        self.ends = [
            min(until, datetime.combine(d + timedelta(days=1), time(), UTC)) for d in self.dates
        ]
        self.since = since
        self.created: list[datetime] = []
        self.done: list[datetime] = []
        self.answers: list[tuple[datetime, bool]] = []

    def add(self, created: datetime, done: datetime | None) -> None:
        self.created.append(created)
        if done is not None:
            self.done.append(done)

    def answer(self, at: datetime, satisfied: bool) -> None:
        self.answers.append((at, satisfied))

    def _index(self, at: datetime) -> int:
        return bisect.bisect_right(self.ends, at)

    def days(self) -> list[Day]:
        size = len(self.dates)
        created, resolved, answered, satisfied = ([0] * size for _ in range(4))
        for at in self.created:
            if at >= self.since:
                created[self._index(at)] += 1
        for at in self.done:
            if self.since <= at < self.ends[-1]:
                resolved[self._index(at)] += 1
        for at, happy in self.answers:
            answered[self._index(at)] += 1
            satisfied[self._index(at)] += happy
        created_sorted, done_sorted = sorted(self.created), sorted(self.done)
        return [
            Day(
                day=self.dates[n],
                created=created[n],
                resolved=resolved[n],
                backlog=bisect.bisect_left(created_sorted, end)
                - bisect.bisect_left(done_sorted, end),
                surveys_answered=answered[n],
                satisfied=satisfied[n],
            )
            for n, end in enumerate(self.ends)
        ]


def tickets_by_status(session: Session) -> dict[tuple[str, str], int]:
    """(status, queue) -> tickets, for the Prometheus gauge read on every scrape."""
    rows = session.execute(
        select(Ticket.status, Ticket.queue, func.count()).group_by(Ticket.status, Ticket.queue)
    )
    return {(status, queue): n for status, queue, n in rows}


def past_sla(session: Session, now: datetime) -> dict[str, int]:
    """Unfinished tickets whose first-response or resolution target has passed."""
    unfinished = Ticket.status.not_in(("resolved", "closed"))
    late_answer = select(func.count()).where(
        unfinished, Ticket.first_response_at.is_(None), Ticket.first_response_due < now
    )
    late_end = select(func.count()).where(unfinished, Ticket.resolution_due < now)
    return {
        "first_response": session.scalar(late_answer) or 0,
        "resolution": session.scalar(late_end) or 0,
    }


def sla_events(session: Session) -> dict[str, int]:
    """SLA warnings and breaches ever raised, by flag: a counter that only grows."""
    flag = Event.data["flag"].as_string()
    rows = session.execute(select(flag, func.count()).where(Event.type == "sla").group_by(flag))
    return {str(name): n for name, n in rows}
