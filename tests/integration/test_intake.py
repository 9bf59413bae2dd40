"""Intake that loses nothing: dedup by content, envelope recipients, recovery of raw files
without a row, and constraint violations that are temporary, never "duplicate"."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from postdesk.config.errors import TemporaryFailure
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.pipeline.recover import recover
from postdesk.store.models import Counter, Inbound, Suppression, Ticket
from postdesk.store.suppressions import suppress
from tests.helpers import mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def inbound_rows(app: Any) -> list[Inbound]:
    with app.db.transaction() as session:
        return list(session.scalars(select(Inbound).order_by(Inbound.id)))


def ticket_count(app: Any) -> int:
    with app.db.transaction() as session:
        return len(session.scalars(select(Ticket.id)).all())


def test_same_message_id_with_other_content_is_a_new_message(app: Any) -> None:
    first = mail(body="My order 1001 did not arrive.")
    second = mail(body="Please also cancel order 1002.")
    second.replace_header("Message-ID", first["Message-ID"])
    one = ingest(app, first.as_bytes(), "smtp", NOW)
    two = ingest(app, second.as_bytes(), "smtp", NOW)
    assert (one.outcome, two.outcome) == ("ticket_created", "ticket_created")
    assert one.ticket_number != two.ticket_number
    assert ticket_count(app) == 2


def test_a_copy_with_other_trace_fields_and_encoding_is_a_duplicate(app: Any) -> None:
    original = mail(body="Привет, принтер горит.\n")
    again = mail()
    again.set_content("Привет, принтер горит.\n", cte="quoted-printable")
    again.replace_header("Message-ID", original["Message-ID"])
    trace = b"Received: from relay2.example.net by mx.example.com; Mon, 23 Nov 2026\r\n"
    trace += b"Delivered-To: support@example.com\r\n"
    copy = trace + again.as_bytes()
    assert copy != original.as_bytes()
    assert ingest(app, original.as_bytes(), "smtp", NOW).outcome == "ticket_created"
    result = ingest(app, copy, "smtp", NOW)
    assert result.outcome == "duplicate"
    assert "same Message-ID and content" in result.reason
    assert ticket_count(app) == 1


def test_envelope_recipients_are_kept_on_the_inbound_row(app: Any) -> None:
    ingest(app, mail().as_bytes(), "pipe", NOW, envelope_to=("Support@Example.com",))
    ingest(app, mail(Delivered_To="help@example.com").as_bytes(), "imap:support", NOW)
    rows = inbound_rows(app)
    assert [r.envelope_to for r in rows] == [["support@example.com"], ["help@example.com"]]


def test_a_raw_file_without_a_row_is_recovered(app: Any) -> None:
    ingest(app, mail(subject="Known").as_bytes(), "pipe", NOW)
    app.raw.put(mail(subject="Lost in a power cut").as_bytes())  # ingest's first step, alone
    recovered = list(recover(app))
    assert len(recovered) == 1
    sha256, result = recovered[0]
    assert result is not None and result.outcome == "ticket_created"
    row = inbound_rows(app)[-1]
    assert (row.sha256, row.source, row.subject) == (sha256, "recovered", "Lost in a power cut")
    assert list(recover(app)) == []


def test_another_constraint_violation_is_temporary_and_keeps_the_raw(app: Any) -> None:
    ingest(app, mail().as_bytes(), "smtp", NOW)
    with app.db.transaction() as session:  # the next ticket number is taken: a unique violation
        session.execute(update(Counter).where(Counter.name == "ticket").values(value=0))
    raw = mail(subject="Second problem").as_bytes()
    with pytest.raises(TemporaryFailure, match="constraint violated"):
        ingest(app, raw, "smtp", NOW)
    assert len(inbound_rows(app)) == 1  # nothing of the failed message was committed
    assert app.raw.get(hashlib.sha256(raw).hexdigest()) == raw
    with app.db.transaction() as session:
        session.execute(update(Counter).where(Counter.name == "ticket").values(value=1))
    assert ingest(app, raw, "smtp", NOW).outcome == "ticket_created"


def test_suppression_is_one_upsert_and_the_later_end_wins(app: Any) -> None:
    later, sooner = NOW + timedelta(days=60), NOW + timedelta(days=1)
    with app.db.transaction() as session:
        suppress(session, "Ann@example.org", "bounce", NOW, later)
        suppress(session, "ann@example.org", "breaker", NOW, sooner)
    with app.db.transaction() as session:
        (row,) = session.scalars(select(Suppression)).all()
        assert (row.reason, row.until) == ("bounce", later)
        suppress(session, "ann@example.org", "second bounce", NOW, later + timedelta(days=1))
    with app.db.transaction() as session:
        (row,) = session.scalars(select(Suppression)).all()
        assert row.reason == "second bounce"


def test_a_config_without_rules_has_none(open_app: Any) -> None:
    app = open_app(queues=[{"name": "support"}, {"name": "sales"}], rules=None)
    assert app.playbook.rules.rules == ()
    ingest(app, mail(subject="Invoice refund please").as_bytes(), "smtp", NOW)
    with app.db.transaction() as session:
        assert session.scalars(select(Ticket.queue)).all() == ["support"]
