"""Addresses that get no automatic mail for a while: hard bounces and tripped breakers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from postdesk.store.db import run
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
    """Start or extend a suppression; the later end wins."""
    row = session.scalar(select(Suppression).where(Suppression.address == address.lower()))
    if row is None:
        session.add(
            Suppression(address=address.lower(), reason=reason, created_at=now, until=until)
        )
        return
    if row.until < until:
        row.until, row.reason, row.created_at = until, reason, now
