"""Durations as customers read them, with the plural forms of each language (CLDR via Babel)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from babel.dates import format_date, format_datetime
from babel.units import format_unit

from postdesk.autoreplies.calendar import Calendar


@functools.lru_cache(maxsize=256)
def response_time(duration: timedelta, language: str) -> str:
    """Whole days from two days up, else whole hours, else minutes: "8 hours", "3 дня".

    Kept per target and language: each acknowledgement names one of a few SLA targets,
    and formatting one through Babel costs more than the rest of its wording."""
    minutes = max(1, round(duration.total_seconds() / 60))
    if minutes >= 2 * 24 * 60 and minutes % (24 * 60) == 0:
        value, unit = minutes // (24 * 60), "day"
    elif minutes >= 60 and minutes % 60 == 0:
        value, unit = minutes // 60, "hour"
    else:
        value, unit = minutes, "minute"
    return format_unit(value, f"duration-{unit}", locale=language)


def local_time(moment: datetime, language: str) -> str:
    """A due time as the customer reads it: weekday, date, time and zone abbreviation."""
    pattern = "EEEE, d MMMM, HH:mm" if language == "en" else "HH:mm, d MMMM (EEEE)"
    return f"{format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=language)} {moment:%Z}"


def date_ranges(days: list[date], language: str) -> list[str]:
    """Consecutive dates as one range: ``1 January – 10 January``."""
    ranges: list[list[date]] = []
    for day in sorted(days):
        if ranges and day - ranges[-1][-1] == timedelta(days=1):
            ranges[-1].append(day)
        else:
            ranges.append([day])
    out = []
    for run in ranges:
        first = format_date(run[0], "d MMMM", locale=language)
        last = format_date(run[-1], "d MMMM", locale=language)
        out.append(first if len(run) == 1 else f"{first} – {last}")
    return out


@functools.lru_cache(maxsize=256)
def expected_response(
    calendar: Calendar, now: datetime, target: timedelta, language: str
) -> Mapping[str, Any]:
    """Template variables that say when a human will answer, in business time; remembered,
    as a group's acknowledgements share their `now` (callers only read the dict)."""
    due = calendar.add(now, target).astimezone(calendar.zone)
    closed = [day for day, _ in calendar.closed_days(now, due)]
    return {
        "response_time": response_time(target, language),
        "response_by": local_time(due, language),
        "response_within": due - now <= target and not closed,
        "closed_days": date_ranges(closed, language),
        "business_hours": calendar.describe(language),
        "open_now": calendar.is_open(now),
    }
