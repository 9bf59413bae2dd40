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

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.orm import Session

from store.models import Event, Message, Outbox, Ticket

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
    column = GROUPINGS[by] if by else literal("")
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
    if since <= row.first_response_at if row.first_response_at else False:
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
