"""Due rows for the timed sweeps, claimed so that two daemons never act on the same one.

On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED``: a second instance skips
what the first is working on, and sees it no longer due once that commit lands. SQLite has
one writer at a time (the transaction starts with BEGIN IMMEDIATE), which gives the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from postdesk.store.models import Counter, Ticket
from postdesk.store.tickets import OPEN_STATES


def _claim(session: Session, query: Select[Ticket], now: datetime, limit: int) -> Sequence[Ticket]:
    """Lock the first due rows; a ticket a sweep failed on waits out its hold."""
    held = or_(Ticket.sweep_hold_until.is_(None), Ticket.sweep_hold_until <= now)
    return session.scalars(query.where(held).limit(limit).with_for_update(skip_locked=True)).all()


def due_reminders(session: Session, now: datetime, limit: int) -> Sequence[Ticket]:
    query = select(Ticket).where(Ticket.status == "pending", Ticket.next_reminder_at <= now)
    return _claim(session, query.order_by(Ticket.next_reminder_at), now, limit)


def due_closures(
    session: Session, now: datetime, resolved_before: datetime, limit: int
) -> Sequence[Ticket]:
    query = select(Ticket).where(Ticket.status == "resolved", Ticket.resolved_at <= resolved_before)
    return _claim(session, query.order_by(Ticket.resolved_at), now, limit)


def due_sla(session: Session, now: datetime, limit: int) -> Sequence[Ticket]:
    query = select(Ticket).where(Ticket.sla_check_at <= now)
    return _claim(session, query.order_by(Ticket.sla_check_at), now, limit)


def unassigned(session: Session, created_before: datetime) -> Sequence[Ticket]:
    return session.scalars(
        select(Ticket)
        .where(Ticket.status.in_(OPEN_STATES), Ticket.assignee.is_(None))
        .where(Ticket.created_at <= created_before)
        .order_by(Ticket.created_at)
    ).all()


def claim_day(session: Session, name: str, day: int) -> bool:
    """True for exactly one caller per day: the counter moves forward atomically."""
    moved = session.execute(
        update(Counter)
        .where(Counter.name == name, Counter.value < day)
        .values(value=day)
        .returning(Counter.value)
    ).first()
    return moved is not None
