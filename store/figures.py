"""The report's figures and the arithmetic that makes them, with no database: shares,
percentiles, tallies per group, counts per day."""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

UNASSIGNED = "(unassigned)"


HISTOGRAM_HOURS = (1, 2, 4, 8, 24, 48)
"""Upper bounds of the first-response histogram buckets; the last bucket is open."""


SATISFIED = 4
"""Survey answers of 4 or more (and "good", scored 5) are satisfied; on the 0-10 scale,
PROMOTER and above."""
PROMOTER, DETRACTOR = 9, 6


@dataclass(frozen=True)
class Thresholds:
    """Where the report draws its lines: times as the admin wrote them ("30m") with their
    seconds in business time, and the survey score from which an answer is satisfied."""

    first_response: dict[str, float] = field(default_factory=dict)
    resolution: dict[str, float] = field(default_factory=dict)
    satisfied_from: int = SATISFIED
    nps: bool = False
    """Answers are on the 0-10 scale: the report gives the Net Promoter Score."""


NO_THRESHOLDS = Thresholds()


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


def _nps(promoters: int, detractors: int, answers: int) -> float | None:
    share = ratio(promoters - detractors, answers)
    return None if share is None else round(share * 100, 1)


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
    """Resolved tickets with exactly one agent reply and never reopened."""
    reopen_rate: float | None
    """Resolved tickets that were reopened at least once."""
    first_response_within: dict[str, float | None]
    """Per threshold (business time): tickets first answered in the period that were
    answered within it."""
    resolution_within: dict[str, float | None]
    """Per threshold (business time): tickets resolved in the period within it."""
    escalation_rate: float | None
    """Tickets created in the period that were moved to a queue of a higher line."""
    backlog: int
    backlog_past_sla: int
    autoreplies_sent: int
    autoreplies_suppressed: dict[str, int]
    surveys_sent: int
    surveys_answered: int
    satisfied: int
    csat: float | None
    survey_response_rate: float | None
    nps: float | None
    """Promoters (9-10) less detractors (0-6), in points of the answers, on the 0-10 scale."""


@dataclass
class Tally:
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
    first_within: Counter[str] = field(default_factory=Counter)
    resolved_within: Counter[str] = field(default_factory=Counter)
    escalated: int = 0
    sla_flags: Counter[str] = field(default_factory=Counter)
    backlog: int = 0
    backlog_past_sla: int = 0
    autoreplies_sent: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    surveys_sent: int = 0
    answered: int = 0
    satisfied: int = 0
    promoters: int = 0
    detractors: int = 0

    def figures(self, thresholds: Thresholds) -> Figures:
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
            first_response_within={
                label: ratio(self.first_within[label], answered)
                for label in thresholds.first_response
            },
            resolution_within={
                label: ratio(self.resolved_within[label], self.resolved)
                for label in thresholds.resolution
            },
            escalation_rate=ratio(self.escalated, self.created),
            backlog=self.backlog,
            backlog_past_sla=self.backlog_past_sla,
            autoreplies_sent=self.autoreplies_sent,
            autoreplies_suppressed=dict(self.suppressed.most_common()),
            surveys_sent=self.surveys_sent,
            surveys_answered=self.answered,
            satisfied=self.satisfied,
            csat=ratio(self.satisfied, self.answered),
            survey_response_rate=ratio(self.answered, self.surveys_sent),
            nps=_nps(self.promoters, self.detractors, self.answered) if thresholds.nps else None,
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


def histogram(seconds: list[float]) -> list[tuple[str, int]]:
    counts = [0] * (len(HISTOGRAM_HOURS) + 1)
    for value in seconds:
        counts[bisect.bisect_left(HISTOGRAM_HOURS, value / 3600)] += 1
    lows = (0, *HISTOGRAM_HOURS)
    labels = [f"{low}-{high}h" for low, high in zip(lows, HISTOGRAM_HOURS, strict=False)]
    return list(zip([*labels, f">{HISTOGRAM_HOURS[-1]}h"], counts, strict=True))


class Daily:
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
