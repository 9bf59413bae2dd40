"""The one place that reads the wall clock, so tests and `--now` can set time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def parse_now(text: str | None) -> datetime:
    """An ISO 8601 instant from the command line; without an offset it is taken as UTC."""
    if not text:
        return now()
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
