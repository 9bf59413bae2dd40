"""The hot path's prebuilt statements and its savepoints run on the driver's cursor
(store/db.py `query`, `insert_values`, `_savepoints_on_driver`): they must read and write
exactly what SQLAlchemy's own execution does, on SQLite and PostgreSQL, raise SQLAlchemy's
errors, and refuse what they cannot compile once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select
from sqlalchemy.exc import IntegrityError

from postdesk.daemon.pipeline.ingest import SEEN, ingest
from postdesk.store import outbox
from postdesk.store.db import insert_many, insert_values, query, table_of
from postdesk.store.inbound import _receive
from postdesk.store.models import Inbound, Message, Outbox, RawPart, Suppression
from postdesk.store.raw import _record_part
from postdesk.store.tickets import KNOWN_CUSTOMER, NEXT_NUMBER
from tests.helpers import mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

KINDS = ("autoreply", "reminder")


def both_ways(session: Any, statement: Any, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The rows through the driver, then the same statement's rows through SQLAlchemy."""
    driven = [tuple(row) for row in query(session, statement, params)]
    return driven, [tuple(row) for row in session.execute(statement, params).all()]


def test_queries_read_what_sqlalchemy_reads(app: Any) -> None:
    ingest(app, mail().as_bytes(), "smtp", NOW)
    with app.db.transaction() as session:
        until = NOW + timedelta(days=3)
        session.add(
            Suppression(
                address="ann@example.org", reason="hard bounce", created_at=NOW, until=until
            )
        )
        session.flush()
        row = session.scalars(select(Inbound)).one()
        seen = {"sha256": row.sha256, "message_id": row.message_id, "sender": row.from_addr}
        history = outbox._history(True, KINDS, KINDS)
        params = {
            "address": "ann@example.org",
            "ticket_id": 1,
            "day": NOW - timedelta(days=1),
            "hour": NOW - timedelta(hours=1),
            "now": NOW,
            "cap": 100,
        }
        for statement, values in [
            (SEEN, seen),
            (KNOWN_CUSTOMER, {"address": "ann@example.org"}),
            (history, params),
        ]:
            driven, expected = both_ways(session, statement, values)
            assert driven == expected and driven
        (found,) = query(session, history, params)
        assert found.suppressed_reason == "hard bounce"
        assert found.suppressed_until == NOW + timedelta(days=3)
        assert isinstance(found.suppressed_until, datetime)
        assert found.to_sender_last_day == 1  # the acknowledgement of the ticket
        # the counter moves once per call, whichever way it runs
        (first,) = query(session, NEXT_NUMBER, {})
        assert session.execute(NEXT_NUMBER).scalar() == first.value + 1


def test_an_insert_takes_the_defaults_of_the_columns_it_leaves_out(app: Any) -> None:
    with app.db.transaction() as session:
        values = {"sha256": "a" * 64, "source": "smtp", "size": 1, "received_at": NOW, "status": ""}
        (inserted,) = query(session, _receive(app.db.engine.dialect.name, tuple(values)), values)
        row = session.get(Inbound, inserted.id)
        assert (row.reason, row.subject, row.from_addr) == ("", "", "")
        assert row.received_at.replace(tzinfo=row.received_at.tzinfo or UTC) == NOW
        # the same bytes again: ON CONFLICT DO NOTHING returns no row
        assert query(session, _receive(app.db.engine.dialect.name, tuple(values)), values) == []


def test_driver_errors_are_sqlalchemys_and_listeners_see_the_statements(app: Any) -> None:
    statements: list[str] = []
    event.listen(app.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with pytest.raises(IntegrityError), app.db.transaction() as session:
        values = {  # every column given, so that nothing is left to SQLAlchemy's defaults
            **{c.key: None for c in table_of(Message).columns if not c.primary_key},
            **{"ticket_id": 999_999, "direction": "in", "kind": "x", "from_addr": "a@b"},
            **{"to_addrs": [], "cc_addrs": [], "subject": "", "body": "", "created_at": NOW},
        }
        insert_values(session.connection(), table_of(Message), values)
    assert any(s.startswith("INSERT INTO messages") for s in statements)


def test_statements_that_cannot_be_compiled_once_are_refused(app: Any) -> None:
    with app.db.transaction() as session:
        expanding = select(Outbox.id).where(Outbox.kind.in_(bindparam("kinds", expanding=True)))
        with pytest.raises(ValueError, match="expanding"):
            query(session, expanding, {"kinds": ["autoreply"]})
        no_fixed_default = table_of(Outbox).insert().values(kind=bindparam("kind"))
        with pytest.raises(ValueError, match="no fixed default"):
            query(session, no_fixed_default, {"kind": "autoreply"})


def test_savepoints_on_the_driver_keep_what_was_released_and_undo_what_failed(app: Any) -> None:
    """A message's savepoint: released, it keeps its rows; a database error inside rolls it
    back alone and the transaction goes on (PostgreSQL refuses every statement after an
    error until then); nested ones unwind in order. Listeners see each statement."""
    statements: list[str] = []
    event.listen(app.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    inbound = table_of(Inbound)

    def row(letter: str) -> dict[str, Any]:
        return {
            "sha256": letter * 64,
            "source": "smtp",
            "size": 1,
            "received_at": NOW,
            "status": "",
            **{"message_id": None, "content_sha256": None, "envelope_to": None},
            **{"from_addr": "", "subject": "", "reason": "", "ticket_id": None},
        }

    with app.db.transaction() as session:
        with session.begin_nested():
            insert_values(session.connection(), inbound, row("a"))
        with pytest.raises(IntegrityError), session.begin_nested():
            insert_values(session.connection(), inbound, row("b"))
            insert_values(session.connection(), inbound, row("a"))  # the same bytes again
        with session.begin_nested(), session.begin_nested():
            insert_values(session.connection(), inbound, row("c"))
    with app.db.transaction() as session:
        assert sorted(session.scalars(select(Inbound.sha256))) == ["a" * 64, "c" * 64]
    assert [s for s in statements if "SAVEPOINT" in s] == [
        "SAVEPOINT sa_savepoint_1",
        "RELEASE SAVEPOINT sa_savepoint_1",
        "SAVEPOINT sa_savepoint_2",
        "ROLLBACK TO SAVEPOINT sa_savepoint_2",
        "SAVEPOINT sa_savepoint_3",
        "SAVEPOINT sa_savepoint_4",
        "RELEASE SAVEPOINT sa_savepoint_4",
        "RELEASE SAVEPOINT sa_savepoint_3",
    ]


def test_many_rows_in_one_statement_are_written_as_sqlalchemy_writes_them(app: Any) -> None:
    rows = [
        {"sha256": "a" * 64, "segment": "s1", "start": 0, "size": 10},
        {"sha256": "b" * 64, "segment": "s1", "start": 2**40, "size": 80},
        {"sha256": "a" * 64, "segment": "s2", "start": 5, "size": 1},  # seen before: skipped
    ]
    statements: list[tuple[str, bool]] = []

    @event.listens_for(app.db.engine, "before_cursor_execute")
    def seen(_conn: Any, _cursor: Any, sql: str, _params: Any, _ctx: Any, many: bool) -> None:
        statements.append((sql, many))

    with app.db.transaction() as session:
        insert_many(session.connection(), _record_part(app.db.engine.dialect.name), rows)
        assert insert_many(session.connection(), _record_part("sqlite"), []) is None
    event.remove(app.db.engine, "before_cursor_execute", seen)
    assert [many for sql, many in statements if "raw_parts" in sql] == [True]
    with app.db.transaction() as session:
        found = session.execute(select(RawPart).order_by(RawPart.sha256)).scalars().all()
        assert [(r.sha256, r.segment, r.start, r.size) for r in found] == [
            ("a" * 64, "s1", 0, 10),
            ("b" * 64, "s1", 2**40, 80),
        ]
