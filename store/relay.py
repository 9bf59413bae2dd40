"""The pause of a transport after a relay fault: one row per transport, shared by every
instance on the database, so a pause survives restarts and `send-outbox` honours it too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from postdesk.store.models import RelayState


def paused(session: Session, name: str, now: datetime) -> RelayState | None:
    """The running pause of this transport at ``now``, if there is one."""
    row = session.get(RelayState, name)
    return row if row and row.paused_until and row.paused_until > now else None


def fault(
    session: Session, name: str, error: str, now: datetime, delay: Callable[[int], timedelta]
) -> RelayState:
    """One more fault in a row: the pause lasts ``delay(faults so far)`` from now."""
    row = session.get(RelayState, name, with_for_update=True)
    if row is None:
        row = RelayState(name=name, failures=0, last_error="")
        session.add(row)
    row.failures += 1
    row.paused_since = row.paused_since or now
    row.paused_until = now + delay(row.failures)
    row.last_error = error
    return row


def recovered(session: Session, name: str) -> RelayState | None:
    """A delivery went through: the pause, if any, is over. Returns the pause that ended."""
    row = session.get(RelayState, name, with_for_update=True)
    if row is None or not row.failures:
        return None
    ended = RelayState(
        name=name,
        failures=row.failures,
        paused_since=row.paused_since,
        paused_until=row.paused_until,
        last_error=row.last_error,
    )
    row.failures, row.paused_since, row.paused_until, row.last_error = 0, None, None, ""
    return ended


def lift(session: Session, name: str) -> bool:
    """End a pause now (the admin fixed the relay and retries): the next run tries at once."""
    row = session.get(RelayState, name, with_for_update=True)
    if row is None or row.paused_until is None:
        return False
    row.paused_until = None
    return True


def view(session: Session, name: str, now: datetime) -> dict[str, Any]:
    """The transport's state for `postdesk status` and the metrics."""
    row = session.get(RelayState, name)
    until = row.paused_until if row and row.paused_until and row.paused_until > now else None
    return {
        "transport": name,
        "paused": until is not None,
        "paused_until": until.isoformat() if until else None,
        "paused_since": row.paused_since.isoformat() if row and row.paused_since else None,
        "relay_failures": row.failures if row else 0,
        "last_relay_error": row.last_error if row else "",
    }
