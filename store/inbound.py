"""Received raw messages: their rows, the quarantine and the intake counts."""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from postdesk.store.db import dialect_insert, query, table_of, typed_binds, update_values
from postdesk.store.models import Inbound

QUARANTINED = "quarantined"


def receive(session: Session, **values: Any) -> int | None:
    """Insert the row of a received message in the session's transaction and return its id;
    None when a row for the same bytes is there already (another process received them in
    the same moment). That is the one conflict the intake expects; any other violation
    raises."""
    statement = _receive(session.connection().dialect.name, tuple(values))
    inserted = query(session, statement, values)
    return int(inserted[0].id) if inserted else None


@functools.cache
def _receive(dialect: str, keys: tuple[str, ...]) -> ReturningInsert[int]:
    """The INSERT of these columns, whose SQL is compiled once (`query`)."""
    table = table_of(Inbound)
    insert = dialect_insert(dialect, table).values(typed_binds(table, keys))
    return insert.on_conflict_do_nothing(index_elements=["sha256"]).returning(Inbound.id)


def known(session: Session, sha256s: Collection[str]) -> set[str]:
    """Which of these raw messages have a row."""
    found = session.scalars(select(Inbound.sha256).where(Inbound.sha256.in_(sha256s)))
    return set(found)


def settle(session: Session, row_id: int, status: str, reason: str, ticket_id: int | None) -> None:
    """What became of the message: its outcome, why, and its ticket."""
    values = {"status": status, "reason": reason, "ticket_id": ticket_id}
    update_values(session.connection(), table_of(Inbound), row_id, values)


def quarantined(session: Session) -> list[Inbound]:
    return list(
        session.scalars(
            select(Inbound).where(Inbound.status == QUARANTINED).order_by(Inbound.id.desc())
        )
    )


def get_quarantined(session: Session, inbound_id: int) -> Inbound | None:
    row = session.get(Inbound, inbound_id)
    return row if row is not None and row.status == QUARANTINED else None


def forget_quarantined(session: Session, row: Inbound) -> None:
    """Released mail is ingested anew, so its dedup row must go first (the raw file stays)."""
    session.delete(row)


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Inbound.status, func.count()).group_by(Inbound.status)).all()
    return {status: n for status, n in rows}


def counts_by_source(session: Session) -> dict[tuple[str, str], int]:
    """Received messages by (source, status): the one intake count that covers every path,
    `postdesk ingest` pipes included, whichever process took them (ix_inbound_source)."""
    query = select(Inbound.source, Inbound.status, func.count()).group_by(
        Inbound.source, Inbound.status
    )
    return {(source, status): n for source, status, n in session.execute(query)}


def row_view(row: Inbound) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": row.received_at.isoformat(),
        "source": row.source,
        "from": row.from_addr,
        "subject": row.subject,
        "message_id": row.message_id,
        "size": row.size,
        "reason": row.reason,
        "sha256": row.sha256,
    }
