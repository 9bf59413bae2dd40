"""Reading the customer's message out of an agent's forward; what is not a forward stays none."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.parsers import parse
from postdesk.parsers.forwards import without_prefix, written_date
from postdesk.parsers.model import ParseContext
from tests.helpers import mail

CONTEXT = ParseContext(
    own_addresses=frozenset({"support@example.com"}),
    agent_addresses=frozenset({"anna@example.com"}),
)
MSK = timezone(timedelta(hours=3))


def agent(body: str, subject: str = "Fwd: Printer", sender: str = "Anna <anna@example.com>"):
    return parse(mail(sender=sender, subject=subject, body=body).as_bytes(), CONTEXT)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Wed, Oct 27, 2021 at 9:31 AM", datetime(2021, 10, 27, 9, 31)),
        ("ср, 27 окт. 2021 г. в 09:31", datetime(2021, 10, 27, 9, 31)),
        ("26 октября 2021 г. в 14:25:08 GMT+3", datetime(2021, 10, 26, 14, 25, 8, tzinfo=MSK)),
        ("Wed, 3 Nov 2021 15:51:30 +0300", datetime(2021, 11, 3, 15, 51, 30, tzinfo=MSK)),
        ("23.11.2026, 10:00", datetime(2026, 11, 23, 10, 0)),
        ("Понедельник, 2 марта 2026, 10:00 +03:00", datetime(2026, 3, 2, 10, 0, tzinfo=MSK)),
        ("четверг, 28 октября 2021 г. в 12:46", datetime(2021, 10, 28, 12, 46)),
        ("25 October 2021 at 11:17:21 EEST", datetime(2021, 10, 25, 11, 17, 21)),
        ("yesterday-ish", None),
        ("", None),
    ],
)
def test_written_dates(written: str, expected: datetime | None) -> None:
    """GMT+3 is three hours ahead (dateutil alone reads it the POSIX way, behind)."""
    assert written_date(written) == expected


def test_forward_prefixes_go_stacked_and_in_both_languages() -> None:
    assert without_prefix("Fwd: FW: Пересл: ПЕРЕСЛ: Printer") == "Printer"
    assert without_prefix("Re: Printer") == "Re: Printer"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "RE: Printer",
            "We are on it.\n\n________________________________\nFrom: Ann <ann@example.org>\n"
            "Sent: Monday, November 23, 2026 9:31 AM\nTo: Anna\nSubject: Printer\n\nIt burns.",
        ),
        (
            "Re: Printer",
            "We are on it.\n\nOn Mon, Nov 23, 2026 at 9:31 AM Ann <ann@example.org> wrote:\n"
            "> It burns.",
        ),
        ("Printer", "The printer on floor 2 was forwarded to the technician yesterday."),
    ],
    ids=["outlook-reply", "gmail-reply", "the-word-only"],
)
def test_a_reply_or_plain_text_forwards_nothing(subject: str, body: str) -> None:
    assert agent(body, subject=subject).forwarded is None


def test_only_agents_mail_is_read_for_a_forward() -> None:
    body = "---------- Forwarded message ---------\nFrom: Victim <victim@example.net>\n\nHi"
    assert agent(body, sender="Ann <ann@example.org>").forwarded is None
    assert agent(body).forwarded is not None


def test_a_block_without_a_readable_sender_keeps_the_rest() -> None:
    found = agent(
        "Please look.\n\n---------- Forwarded message ---------\nFrom: Ann Customer\n"
        "Date: someday\n\nIt burns.",
        subject="Fwd: Fwd: Printer on fire",
    ).forwarded
    assert found is not None
    assert (found.from_addr, found.from_name, found.date) == ("", "", None)
    assert found.subject == "Printer on fire" and found.text == "It burns."
    assert found.note == "Please look."


def test_a_long_block_of_fields_is_read_only_so_far() -> None:
    fields = "".join(f"To: person{n}@example.net\n" for n in range(10_000))
    found = agent(
        f"-------- Forwarded Message --------\nFrom: Ann <ann@example.org>\n{fields}\nIt burns."
    ).forwarded
    assert found is not None and found.from_addr == "ann@example.org"
    assert found.text.startswith("To: person11@example.net")


MARKERS = st.sampled_from(
    [
        "---------- Forwarded message ---------",
        "-------- Пересылаемое сообщение --------",
        "> Begin forwarded message:",
        "-------- Начало переадресованного сообщения --------",
        "________________________________",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    note=st.text(max_size=200),
    marker=MARKERS,
    block=st.lists(st.text(max_size=80), max_size=20),
)
def test_any_text_under_a_marker_reads_without_error(
    note: str, marker: str, block: list[str]
) -> None:
    """Whatever follows a marker, the forward is read or not, and its sender is an address
    or nothing."""
    body = "\n".join([note, marker, *block])
    found = agent(body, subject="FW: Printer").forwarded
    if found is not None:
        assert found.from_addr == "" or "@" in found.from_addr
        assert "\n" not in found.subject
