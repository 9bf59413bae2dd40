"""Durations as customers read them, with the plural forms of each language (CLDR via Babel)."""

from __future__ import annotations

from datetime import timedelta

from babel.units import format_unit


def response_time(duration: timedelta, language: str) -> str:
    """Whole days from two days up, else whole hours, else minutes: "8 hours", "3 дня"."""
    minutes = max(1, round(duration.total_seconds() / 60))
    if minutes >= 2 * 24 * 60 and minutes % (24 * 60) == 0:
        value, unit = minutes // (24 * 60), "day"
    elif minutes >= 60 and minutes % 60 == 0:
        value, unit = minutes // 60, "hour"
    else:
        value, unit = minutes, "minute"
    return format_unit(value, f"duration-{unit}", locale=language)
