"""The threads of one process take turns at SQLite's one write lock (store/db.py
`Database._my_turn`): a second writer waits for the first to commit, then sees its rows; one
that waits too long is a temporary failure, as SQLite's own busy timeout was."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postdesk.config.errors import TemporaryFailure
from postdesk.store import db as db_module
from postdesk.store.db import Database
from postdesk.store.models import Suppression
from postdesk.store.schema import ensure_current

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'postdesk.sqlite3'}")
    ensure_current(db)
    return db


def suppress(db: Database, address: str) -> int:
    """Write one row, and count the rows this transaction sees."""
    with db.transaction() as session:
        session.add(Suppression(address=address, reason="test", created_at=NOW, until=NOW))
        session.flush()
        return int(session.scalar(select(func.count()).select_from(Suppression)) or 0)


def test_a_second_writer_waits_for_the_first_and_sees_its_rows(database: Database) -> None:
    inside, let_go = threading.Event(), threading.Event()

    def first() -> int:
        with database.transaction() as session:
            session.add(Suppression(address="a@example.org", reason="x", created_at=NOW, until=NOW))
            session.flush()
            inside.set()
            assert let_go.wait(10)
        return 1

    with ThreadPoolExecutor(2) as pool:
        holding = pool.submit(first)
        assert inside.wait(10)
        second = pool.submit(suppress, database, "b@example.org")
        assert not second.done()
        let_go.set()
        assert holding.result(10) == 1
        assert second.result(10) == 2  # the first one's row, then its own
    database.dispose()


def test_a_writer_kept_waiting_too_long_fails_for_now(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "BUSY_SECONDS", 0.2)
    inside, let_go = threading.Event(), threading.Event()

    def hold() -> None:
        with database.transaction():
            inside.set()
            assert let_go.wait(10)

    with ThreadPoolExecutor(2) as pool:
        holding = pool.submit(hold)
        assert inside.wait(10)
        waiting = pool.submit(suppress, database, "b@example.org")
        with pytest.raises(TemporaryFailure, match="another thread held it"):
            waiting.result(10)
        let_go.set()
        holding.result(10)
    assert suppress(database, "c@example.org") == 1  # nothing of the one that gave up
    database.dispose()
