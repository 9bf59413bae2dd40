"""The suppression policy through ingest: real-world header sets, bounces of our own mail,
rate limits, the circuit breaker, and the business-hours wording of the acknowledgement."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.models import Outbox, Suppression
from postdesk.store.schema import ensure_current
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import mail, parse_mail

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def desk(write_config: Callable[..., Path], database_url: str) -> Iterator[App]:
    config = write_config(
        database=database_url,
        admin_address="admin@example.com",
        queues=[
            {"name": "general", "members": ["anna@example.com"]},
            {"name": "ops"},
            {"name": "billing"},
        ],
        business_hours={
            "timezone": "Europe/Moscow",
            "week": {"mon-fri": "09:00-18:00"},
            "holidays": {"country": "RU"},
        },
        autoreply={"circuit_breaker_per_hour": 3},
    )
    app = App.open(str(config))
    ensure_current(app.db)
    yield app
    app.db.dispose()


def outbox(app: App, kind: str | None = None) -> list[Outbox]:
    with app.db.transaction() as session:
        query = select(Outbox).order_by(Outbox.id)
        if kind:
            query = query.where(Outbox.kind == kind)
        return list(session.scalars(query))


def events(app: App, number: int) -> list[dict[str, Any]]:
    with app.db.transaction() as session:
        ticket = load_ticket(session, str(number))
        assert ticket is not None
        return detail(ticket, MONDAY)["events"]


HEADER_SETS = [
    (
        "Exchange out of office",
        {
            "Subject": "Automatic reply: Printer",
            "X-Auto-Response-Suppress": "All",
            "Auto-Submitted": "auto-replied",
        },
    ),
    (
        "Exchange OOF without Auto-Submitted",
        {
            "Subject": "Automatic reply: Printer",
            "X-MS-Exchange-Inbox-Rules-Loop": "ann@example.org",
        },
    ),
    (
        "Gmail vacation",
        {"Subject": "Re: Printer", "Auto-Submitted": "auto-replied", "Precedence": "bulk"},
    ),
    ("Yandex autoreply", {"Subject": "Автоответ: Printer", "Auto-Submitted": "auto-replied"}),
    ("Mail.ru autoreply", {"Subject": "Re: Printer", "X-Mailru-Autoreply": "1"}),
    ("Russian out of office", {"Subject": "Нет на месте до 1 декабря"}),
    ("mailing list", {"List-Id": "<users.lists.example.org>", "List-Unsubscribe": "<mailto:u@x>"}),
    ("bulk newsletter", {"Precedence": "bulk"}),
    ("junk", {"Precedence": "junk"}),
    ("null return path", {"Return-Path": "<>"}),
    ("another postdesk", {"X-Postdesk-Loop": "help@other.example"}),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("name", "headers"), HEADER_SETS, ids=[n for n, _ in HEADER_SETS])
def test_machine_mail_gets_no_acknowledgement(
    desk: App, name: str, headers: dict[str, str]
) -> None:
    subject = headers.pop("Subject", "Printer")
    source = mail(subject=subject, **{k.replace("-", "_"): v for k, v in headers.items()})
    result = ingest(desk, source.as_bytes(), "smtp", MONDAY)
    assert result.queued_mail == 0, name
    assert result.outcome == "suppressed", (name, result.reason)


@pytest.mark.parametrize(
    ("sender", "expected"),
    [("MAILER-DAEMON@mx.example.org", "suppressed"), ("postmaster@example.org", "ticket_created")],
)
def test_daemon_senders(desk: App, sender: str, expected: str) -> None:
    result = ingest(desk, mail(sender=sender).as_bytes(), "smtp", MONDAY)
    assert result.outcome == expected
    assert result.queued_mail == 0  # a postmaster's own mail is a ticket, but never answered


def bounce_of(ack: bytes, failed: str) -> bytes:
    return (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        b"To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; " + failed.encode() + b"\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + ack + b"\r\n--b--\r\n"
    )


def test_bounce_of_our_mail_is_recorded_and_pauses_automatic_mail(desk: App) -> None:
    ingest(desk, mail().as_bytes(), "smtp", MONDAY)
    (ack,) = outbox(desk, "autoreply")
    result = ingest(desk, bounce_of(ack.content, "ann@example.org"), "smtp", MONDAY)
    # the agents' notice counts as queued: it wakes the sender, and `ingest` delivers it
    assert (result.outcome, result.ticket_number, result.queued_mail) == ("suppressed", 1, 1)
    bounce = next(e for e in events(desk, 1) if e["type"] == "bounce")
    assert bounce["data"]["failed"] == ["ann@example.org"]
    (notice,) = outbox(desk, "notice")
    assert notice.recipients == ["anna@example.com"]
    assert "could not be delivered to ann@example.org" in parse_mail(notice.content).get_content()
    with desk.db.transaction() as session:
        (row,) = session.scalars(select(Suppression))
        assert row.until == MONDAY + timedelta(days=60)
    again = ingest(desk, mail(subject="Another question").as_bytes(), "smtp", MONDAY)
    assert again.queued_mail == 0
    reasons = [e["data"].get("reason", "") for e in events(desk, 2)]
    assert any(r.startswith("address suppressed: hard bounce on ticket #1") for r in reasons)


def test_forged_bounce_suppresses_nothing(desk: App) -> None:
    ingest(desk, mail().as_bytes(), "smtp", MONDAY)
    forged = bounce_of(
        b"Message-ID: <pd.t1xaaaaaaaaaaaaaaaa.1@example.com>\r\n\r\nx", "ann@example.org"
    )
    assert ingest(desk, forged, "smtp", MONDAY).outcome == "suppressed"
    with desk.db.transaction() as session:
        assert list(session.scalars(select(Suppression))) == []


def test_bounce_pauses_only_recipients_of_the_mail_it_names(desk: App) -> None:
    """An attacker bounces our acknowledgement to them and lists the victims as failed."""
    ingest(desk, mail(sender="mallory@evil.example").as_bytes(), "smtp", MONDAY)
    (ack,) = outbox(desk, "autoreply")
    fake = bounce_of(ack.content, "ann@example.org").replace(
        b"Final-Recipient: rfc822; ann@example.org\r\n",
        b"Final-Recipient: rfc822; ann@example.org\r\nAction: failed\r\n\r\n"
        b"Final-Recipient: rfc822; mallory@evil.example\r\n",
    )
    ingest(desk, fake, "smtp", MONDAY)
    bounce = next(e for e in events(desk, 1) if e["type"] == "bounce")
    assert bounce["data"]["failed"] == ["mallory@evil.example"]
    assert bounce["data"]["not_our_recipients"] == ["ann@example.org"]
    with desk.db.transaction() as session:
        assert [r.address for r in session.scalars(select(Suppression))] == ["mallory@evil.example"]
    assert all(
        "ann@example.org" not in parse_mail(n.content).get_content() for n in outbox(desk, "notice")
    )
    assert ingest(desk, mail().as_bytes(), "smtp", MONDAY).queued_mail == 1


def test_circuit_breaker_stops_automatic_mail_and_alerts_once(desk: App) -> None:
    for i in range(5):
        ingest(desk, mail(sender=f"c{i}@example.org").as_bytes(), "smtp", MONDAY)
    assert len(outbox(desk, "autoreply")) == 3
    (alert,) = outbox(desk, "alert")
    assert alert.recipients == ["admin@example.com"]
    assert "circuit breaker" in parse_mail(alert.content).get_content()
    assert parse_mail(alert.content)["Auto-Submitted"] == "auto-generated"


def test_acknowledgement_on_friday_evening_names_monday(desk: App) -> None:
    with freeze_time("2026-11-27 15:30:00"):  # Friday, 18:30 in Moscow
        ingest(desk, mail().as_bytes(), "smtp")
    text = parse_mail(outbox(desk, "autoreply")[0].content).get_content()
    assert "outside our working hours (Mon–Fri 09:00–18:00 (Europe/Moscow))" in text
    assert "We will answer by Monday, 30 November, 17:00 MSK." in text
    assert "We are closed on 28 November – 29 November." in text


def test_acknowledgement_in_office_hours_says_within(desk: App) -> None:
    with freeze_time("2026-11-23 07:00:00"):  # Monday, 10:00 in Moscow
        ingest(desk, mail().as_bytes(), "smtp")
    text = parse_mail(outbox(desk, "autoreply")[0].content).get_content()
    assert "We aim to answer within 8 hours." in text
