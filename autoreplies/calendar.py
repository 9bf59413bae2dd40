"""Business time: when the desk is open, and what "8 working hours from now" means.

Weekly hours may differ per weekday and be split (lunch breaks); national holidays come from
the `holidays` package, plus the admin's extra closed dates and extra working days (Russia
moves weekends to make long holidays). Intervals are built per local day with zoneinfo, so
a DST change shortens or lengthens that day's hours instead of shifting them.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import get_day_names

from postdesk.config.errors import ConfigError
from postdesk.config.schema import BusinessHours

if TYPE_CHECKING:
    import holidays as holiday_data

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MAX_DAYS = 3 * 366
"""How far ahead to look for open hours before deciding the calendar is never open."""

Shift = tuple[time, time]


@dataclass(frozen=True, eq=False)
class Calendar:
    """Compared and hashed as itself, not by its fields: one is built per queue at each
    load of the settings, and its sums are remembered under it (`_added`, `_between`)."""

    zone: ZoneInfo
    week: tuple[tuple[Shift, ...], ...]
    """Shifts per weekday, Monday first."""
    closed: frozenset[date] = frozenset()
    extra_open: frozenset[date] = frozenset()
    holidays: holiday_data.HolidayBase | None = field(default=None, compare=False)

    @classmethod
    def from_settings(cls, hours: BusinessHours) -> Calendar:
        try:
            zone = ZoneInfo(hours.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"business_hours.timezone: unknown time zone {hours.timezone!r}"
            ) from exc
        week: list[tuple[Shift, ...]] = [() for _ in DAYS]
        for days, spans in hours.week.items():
            shifts = _shifts(spans, f"business_hours.week.{days}")
            for day in _days(days):
                week[day] = shifts
        if not any(week):
            raise ConfigError("business_hours.week: the desk is never open")
        return cls(
            zone=zone,
            week=tuple(week),
            closed=frozenset(_dates(hours.closed, "business_hours.closed")),
            extra_open=frozenset(_dates(hours.open, "business_hours.open")),
            holidays=_holidays(hours.holidays),
        )

    def closed_reason(self, day: date) -> str | None:
        """Why the desk is closed all of that day, or None when it opens."""
        if day in self.extra_open:
            return None
        if day in self.closed:
            return "closed"
        if self.holidays is not None and day in self.holidays:
            return str(self.holidays.get(day))
        if not self.week[day.weekday()]:
            return "weekend"
        return None

    def shifts(self, day: date) -> list[tuple[datetime, datetime]]:
        if self.closed_reason(day):
            return []
        pattern = self.week[day.weekday()] or next(s for s in self.week if s)
        return [
            (
                datetime.combine(day, start, self.zone),
                datetime.combine(day, end, self.zone)
                if end != time(0)
                else datetime.combine(day + timedelta(days=1), time(0), self.zone),
            )
            for start, end in pattern
        ]

    def _from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        local = start.astimezone(self.zone)
        day = local.date()
        for _ in range(MAX_DAYS):
            for begin, end in self.shifts(day):
                if end > local:
                    yield max(begin, local), end
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return any(begin <= local < end for begin, end in self.shifts(local.date()))

    @property
    def workday(self) -> timedelta:
        """The longest day's open time: what one working day of an SLA target means."""
        return max(sum((_length(a, b) for a, b in shifts), timedelta()) for shifts in self.week)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment when ``duration`` of open time has passed after ``start``.

        Whole days count working days ("5d" is five working days, not 120 working hours);
        anything else counts working hours and minutes.
        """
        return _added(self, start, duration)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Open time from start to end (zero when end is earlier)."""
        return _between(self, start, end)

    def closed_days(self, start: datetime, end: datetime) -> list[tuple[date, str]]:
        """Whole closed days strictly inside a wait, to tell the customer why it is long."""
        day = start.astimezone(self.zone).date() + timedelta(days=1)
        last = end.astimezone(self.zone).date()
        found: list[tuple[date, str]] = []
        while day < last and len(found) < 31:
            reason = self.closed_reason(day)
            if reason:
                found.append((day, reason))
            day += timedelta(days=1)
        return found

    def describe(self, language: str = "en") -> str:
        """The weekly hours in one line, e.g. ``Mon-Fri 09:00-18:00; Sat 10:00-14:00``."""
        names = _day_names(language)
        parts: list[str] = []
        index = 0
        while index < len(DAYS):
            shifts = self.week[index]
            last = index
            while last + 1 < len(DAYS) and self.week[last + 1] == shifts:
                last += 1
            if shifts:
                days = names[index] if last == index else f"{names[index]}–{names[last]}"
                spans = ", ".join(f"{a:%H:%M}–{_until(b)}" for a, b in shifts)
                parts.append(f"{days} {spans}")
            index = last + 1
        return f"{'; '.join(parts)} ({self.zone.key})"


@functools.lru_cache(maxsize=1024)
def _added(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    """Remembered: the messages of a group share one `now`, and their tickets a few SLA
    targets, so most of a group's sums were done for the message before."""
    days, rest = divmod(duration, timedelta(days=1))
    left = days * calendar.workday if days and not rest else duration
    for begin, end in calendar._from(start):
        if end - begin >= left:
            return begin + left
        left -= end - begin
    raise ConfigError("business_hours: no open time within three years")


@functools.lru_cache(maxsize=1024)
def _between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    total = timedelta()
    for begin, stop in calendar._from(start):
        if begin >= end:
            break
        total += min(stop, end) - begin
    return total


def _until(end: time) -> str:
    """A shift's end as the admin wrote it: a day that ends at midnight reads 24:00."""
    return "24:00" if end == time(0) else f"{end:%H:%M}"


@functools.cache
def _day_names(language: str) -> dict[int, str]:
    """Babel parses its locale data on every call; every acknowledgement describes hours."""
    return dict(get_day_names("abbreviated", locale=language))


def _length(start: time, end: time) -> timedelta:
    day = date(2000, 1, 3)
    stop = datetime.combine(day + timedelta(days=1) if end == time(0) else day, end)
    return stop - datetime.combine(day, start)


def _days(spec: str) -> list[int]:
    found: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ConfigError(f"business_hours.week: {spec!r} is not a weekday or range (mon-fri)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        found.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return found


def _shifts(spec: str, where: str) -> tuple[Shift, ...]:
    if spec.strip().lower() in ("", "closed"):
        return ()
    shifts = []
    for part in spec.split(","):
        match = SPAN.match(part)
        if match is None:
            raise ConfigError(f"{where}: {part.strip()!r} is not a span like 09:00-18:00")
        h1, m1, h2, m2 = map(int, match.groups())
        if h2 == 24 and m2 == 0:
            h2 = 0
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError as exc:
            raise ConfigError(f"{where}: {part.strip()!r}: {exc}") from exc
        if end != time(0) and end <= start:
            raise ConfigError(f"{where}: {part.strip()!r} ends before it starts")
        shifts.append((start, end))
    shifts.sort()
    for (_, end), (start, _) in itertools.pairwise(shifts):
        if end == time(0) or start < end:
            raise ConfigError(f"{where}: shifts overlap")
    return tuple(shifts)


def _dates(values: list[str], where: str) -> list[date]:
    try:
        return [date.fromisoformat(v) for v in values]
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _holidays(spec: dict[str, str]) -> holiday_data.HolidayBase | None:
    if not spec:
        return None
    unknown = set(spec) - {"country", "subdivision"}
    if unknown or "country" not in spec:
        raise ConfigError("business_hours.holidays: give `country` and optionally `subdivision`")
    import holidays as holiday_data  # its country tables load only for a calendar that names one

    try:
        return holiday_data.country_holidays(spec["country"], subdiv=spec.get("subdivision"))
    except NotImplementedError as exc:
        raise ConfigError(f"business_hours.holidays: {exc}") from exc
