"""Business time across weekends, holidays, split shifts, midnight and DST changes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from postdesk.autoreplies.calendar import Calendar
from postdesk.autoreplies.wording import expected_response
from postdesk.config.errors import ConfigError
from postdesk.config.schema import BusinessHours

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)


def calendar(**fields: object) -> Calendar:
    return Calendar.from_settings(BusinessHours(**fields))  # type: ignore[arg-type]


RU = calendar(
    timezone="Europe/Moscow",
    week={"mon-fri": "09:00-13:00, 14:00-18:00"},
    holidays={"country": "RU"},
)


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        (datetime(2026, 11, 23, 10, tzinfo=MSK), 2 * H, datetime(2026, 11, 23, 12, tzinfo=MSK)),
        # the lunch break does not count
        (datetime(2026, 11, 23, 12, tzinfo=MSK), 2 * H, datetime(2026, 11, 23, 15, tzinfo=MSK)),
        # Friday evening to Monday morning
        (datetime(2026, 11, 27, 17, tzinfo=MSK), 2 * H, datetime(2026, 11, 30, 10, tzinfo=MSK)),
        # mail at night waits for the opening
        (datetime(2026, 11, 24, 2, tzinfo=MSK), H / 2, datetime(2026, 11, 24, 9, 30, tzinfo=MSK)),
        # New Year holidays in Russia: closed from 1 to 10 January 2027
        (datetime(2026, 12, 30, 17, tzinfo=MSK), 2 * H, datetime(2027, 1, 11, 10, tzinfo=MSK)),
        # whole days are working days
        (
            datetime(2026, 11, 23, 10, tzinfo=MSK),
            5 * 24 * H,
            datetime(2026, 11, 30, 10, tzinfo=MSK),
        ),
    ],
)
def test_add_business_time(start: datetime, duration: timedelta, due: datetime) -> None:
    assert RU.add(start, duration) == due
    if duration < 24 * H:
        assert RU.between(start, due) == duration


def test_utc_input_is_read_in_the_desk_zone() -> None:
    start = datetime(2026, 11, 23, 6, tzinfo=ZoneInfo("UTC"))  # 09:00 in Moscow
    assert RU.add(start, H) == datetime(2026, 11, 23, 10, tzinfo=MSK)
    assert RU.is_open(start)
    assert not RU.is_open(start - timedelta(minutes=1))


def test_dst_change_keeps_local_opening_hours() -> None:
    berlin = calendar(timezone="Europe/Berlin", week={"mon-sun": "08:00-20:00"})
    # 29 March 2026: clocks go forward at 02:00; 25 October 2026: back at 03:00
    for day in (
        datetime(2026, 3, 28, 19, tzinfo=BERLIN),
        datetime(2026, 10, 24, 19, tzinfo=BERLIN),
    ):
        due = berlin.add(day, 2 * H)
        assert due == day.replace(day=day.day + 1, hour=9)
        assert due.utcoffset() != day.utcoffset()


def test_shift_past_midnight_and_round_the_clock() -> None:
    night = calendar(timezone="UTC", week={"mon-fri": "20:00-24:00"})
    start = datetime(2026, 11, 23, 23, tzinfo=ZoneInfo("UTC"))
    assert night.add(start, 2 * H) == datetime(2026, 11, 24, 21, tzinfo=ZoneInfo("UTC"))
    always = calendar(timezone="UTC", week={"mon-sun": "00:00-24:00"})
    assert always.add(start, 30 * H) == start + 30 * H


def test_extra_closed_and_working_days() -> None:
    cal = calendar(
        timezone="Europe/Moscow",
        week={"mon-fri": "09:00-18:00"},
        closed=["2026-11-24"],
        open=["2026-11-28"],
    )
    assert cal.closed_reason(date(2026, 11, 24)) == "closed"
    assert cal.closed_reason(date(2026, 11, 28)) is None  # a Saturday made a working day
    assert cal.closed_reason(date(2026, 11, 29)) == "weekend"
    start = datetime(2026, 11, 23, 17, tzinfo=MSK)
    assert cal.add(start, 2 * H) == datetime(2026, 11, 25, 10, tzinfo=MSK)


def test_describe_in_both_languages() -> None:
    cal = calendar(timezone="Europe/Moscow", week={"mon-fri": "09:00-18:00", "sat": "10:00-14:00"})
    assert cal.describe("en") == "Mon–Fri 09:00–18:00; Sat 10:00–14:00 (Europe/Moscow)"
    assert cal.describe("ru") == "пн–пт 09:00–18:00; сб 10:00–14:00 (Europe/Moscow)"


def test_describe_a_day_that_ends_at_midnight() -> None:
    """A desk open around the clock is open until 24:00, not until 00:00."""
    cal = calendar(timezone="UTC", week={"mon-sun": "00:00-24:00"})
    assert cal.describe("en") == "Mon–Sun 00:00–24:00 (UTC)"
    assert calendar(week={"fri": "18:00-24:00"}).describe("ru") == "пт 18:00–24:00 (UTC)"


def test_ack_wording_says_when_and_why() -> None:
    friday = datetime(2026, 11, 27, 17, tzinfo=MSK)
    en = expected_response(RU, friday, 2 * H, "en")
    assert en["response_by"] == "Monday, 30 November, 10:00 MSK"
    assert not en["response_within"]
    assert en["closed_days"] == ["28 November – 29 November"]
    ru = expected_response(RU, datetime(2026, 12, 30, 17, tzinfo=MSK), 2 * H, "ru")
    assert ru["response_by"] == "10:00, 11 января (понедельник) MSK"
    # 31 December 2026 is a day off in Russia (moved from a weekend), then the New Year break
    assert ru["closed_days"] == ["31 декабря – 10 января"]
    monday = expected_response(RU, datetime(2026, 11, 23, 10, tzinfo=MSK), 2 * H, "ru")
    assert monday["response_within"] and monday["response_time"] == "2 часа"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"week": {"mon-fri": "9-18"}}, "not a span"),
        ({"week": {"funday": "09:00-18:00"}}, "not a weekday"),
        ({"week": {"mon": "18:00-09:00"}}, "ends before it starts"),
        ({"week": {"mon": "09:00-13:00, 12:00-18:00"}}, "overlap"),
        ({"week": {"mon-sun": "closed"}}, "never open"),
        ({"holidays": {"country": "XX"}}, "business_hours.holidays"),
        ({"closed": ["2026-13-01"]}, "business_hours.closed"),
    ],
)
def test_bad_calendars_are_refused(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        calendar(**fields)
