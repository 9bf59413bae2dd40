"""Addresses that get no automatic mail for a while: hard bounces and tripped breakers."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, bindparam, func, select
from sqlalchemy.orm import Session

from postdesk.store.db import dialect_insert, table_of
from postdesk.store.models import Outbox, Suppression


def active(column: Any) -> Any:
    """One column of the address's running suppression (``address``, ``now``), as a value in
    a larger query: the acknowledgement asks it with its rate counts in one statement."""
    return (
        select(column)
        .where(Suppression.address == bindparam("address"), Suppression.until > bindparam("now"))
        .scalar_subquery()
    )


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


BREAKER = "circuit breaker:"
"""How a tripped sender breaker's suppression reason begins."""


def breaker(
    session: Session, now: datetime, kinds: tuple[str, ...], per_hour: int
) -> dict[str, Any]:
    """A circuit breaker on mail of these kinds, as it stands, for `postdesk status` and the
    metrics: it holds while the last hour's mail reaches ``per_hour``, that is until the
    oldest mail over the limit is an hour old."""
    window = select(Outbox.created_at).where(
        Outbox.kind.in_(kinds), Outbox.created_at >= now - timedelta(hours=1)
    )
    count = session.scalar(select(func.count()).select_from(window.subquery())) or 0
    until = None
    if count >= per_hour:
        oldest = session.scalar(window.order_by(Outbox.created_at).offset(count - per_hour))
        until = oldest + timedelta(hours=1) if oldest else None
    return {
        "tripped": until is not None,
        "until": until.isoformat() if until else None,
        "last_hour": count,
        "limit_per_hour": per_hour,
    }


def tripped_senders(session: Session, now: datetime) -> dict[str, Any]:
    """Senders whose own breaker holds (their suppression says so): how many, the latest 20."""
    senders = select(Suppression).where(
        Suppression.reason.startswith(BREAKER), Suppression.until > now
    )
    count = session.scalar(select(func.count()).select_from(senders.subquery())) or 0
    shown = session.scalars(senders.order_by(Suppression.until.desc()).limit(20))
    return {
        "count": count,
        "latest": [{"address": s.address, "until": s.until.isoformat()} for s in shown],
    }
