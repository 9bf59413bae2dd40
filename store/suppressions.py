"""Addresses that get no automatic mail for a while: hard bounces and tripped breakers."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Insert, Row, bindparam, select
from sqlalchemy.orm import Session

from postdesk.store.db import dialect_insert, run, table_of
from postdesk.store.models import Suppression

ACTIVE = select(Suppression.reason, Suppression.until).where(
    Suppression.address == bindparam("address"), Suppression.until > bindparam("now")
)
"""Built once: asked for every acknowledgement, and building a statement costs more than
running it."""


def active(session: Session, address: str, now: datetime) -> Row[tuple[str, datetime]] | None:
    """The reason and end of the address's suppression, if one is running."""
    return run(session, ACTIVE, {"address": address.lower(), "now": now}).first()


def suppress(session: Session, address: str, reason: str, now: datetime, until: datetime) -> None:
    """Start or extend a suppression; the later end wins.

    One upsert, so two messages that suppress the same address at the same moment (two
    bounces, two processes) both succeed instead of one failing on the unique address."""
    conn = session.connection()
    values = {"address": address.lower(), "reason": reason, "created_at": now, "until": until}
    conn.execute(_suppress(conn.dialect.name), values)


@functools.cache
def _suppress(dialect: str) -> Insert:
    insert = dialect_insert(dialect, table_of(Suppression))
    later = {name: insert.excluded[name] for name in ("reason", "created_at", "until")}
    return insert.on_conflict_do_update(
        index_elements=["address"], set_=later, where=Suppression.until < insert.excluded.until
    )
