"""Per-mailbox IMAP state: the lease that lets one instance poll, the UID cursor, health.

Every write that moves the cursor is conditional on still holding the lease, so an instance
that stalled past its lease can never overwrite the progress of the one that took over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postdesk.store.db import Database
from postdesk.store.models import Inbound, MailboxState


def ensure(db: Database, name: str) -> None:
    """Create the mailbox's row once; a concurrent insert by another instance is fine."""
    try:
        with db.transaction() as session:
            if session.get(MailboxState, name) is None:
                session.add(MailboxState(name=name, last_uid=0, backlog=0, last_error=""))
    except IntegrityError:
        pass


def take_lease(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease in one conditional UPDATE: atomic on SQLite and PostgreSQL."""
    result = session.execute(
        update(MailboxState)
        .where(MailboxState.name == name)
        .where(
            or_(
                MailboxState.lease_holder.is_(None),
                MailboxState.lease_holder == holder,
                MailboxState.lease_expires_at < now,
            )
        )
        .values(lease_holder=holder, lease_expires_at=now + ttl)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_lease(session: Session, name: str, holder: str) -> None:
    session.execute(
        update(MailboxState)
        .where(MailboxState.name == name, MailboxState.lease_holder == holder)
        .values(lease_holder=None, lease_expires_at=None, connected=False)
    )


def cursor(session: Session, name: str) -> tuple[int | None, int]:
    """(UIDVALIDITY, last UID done) as last recorded."""
    row = session.get(MailboxState, name)
    return (row.uidvalidity, row.last_uid) if row else (None, 0)


def advance(session: Session, name: str, holder: str, uidvalidity: int, last_uid: int) -> bool:
    """Record progress; False if the lease was lost meanwhile (the caller must stop)."""
    result = session.execute(
        update(MailboxState)
        .where(MailboxState.name == name, MailboxState.lease_holder == holder)
        .values(uidvalidity=uidvalidity, last_uid=last_uid)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def report(session: Session, name: str, holder: str, **health: Any) -> None:
    """Health fields (connected, last_success_at, backlog, last_error) of the lease holder."""
    session.execute(
        update(MailboxState)
        .where(MailboxState.name == name, MailboxState.lease_holder == holder)
        .values(**health)
    )


def inbound_status(session: Session, sha256: str) -> str | None:
    """What ingest made of these bytes earlier, to file a re-fetched message correctly."""
    return session.scalar(select(Inbound.status).where(Inbound.sha256 == sha256).limit(1))


def health(session: Session, names: list[str], now: datetime) -> list[dict[str, Any]]:
    """One object per configured mailbox for `postdesk status`, never-polled ones included;
    a holder whose lease ran out (a crashed instance) no longer counts as connected."""
    rows = {r.name: r for r in session.scalars(select(MailboxState))}
    out = []
    for name in names:
        row = rows.get(name)
        out.append(
            {
                "name": name,
                "connected": bool(
                    row and row.connected and row.lease_expires_at and row.lease_expires_at > now
                ),
                "last_success": row.last_success_at.isoformat()
                if row and row.last_success_at
                else None,
                "backlog": row.backlog if row else None,
                "last_error": row.last_error if row else "",
                "uidvalidity": row.uidvalidity if row else None,
                "last_uid": row.last_uid if row else 0,
                "lease_holder": row.lease_holder if row else None,
            }
        )
    return out
