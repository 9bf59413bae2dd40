"""Outgoing mail as rows: queued with the change that caused it, claimed by one sender at a time."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from postdesk.store import suppressions
from postdesk.store.db import insert_values, query, run, table_of, update_values
from postdesk.store.models import Outbox, Suppression

QUEUED, SENT, FAILED = "queued", "sent", "failed"


@dataclass(frozen=True)
class Composed:
    """A message as it goes on the wire, with the two fields its outbox row keeps."""

    content: bytes
    sender: str
    message_id: str


def enqueue(
    session: Session,
    *,
    mail: Composed,
    kind: str,
    recipients: list[str],
    now: datetime,
    ticket_id: int | None = None,
) -> int:
    """Queue a composed mail, due at once; its row is written at once. Returns its id."""
    row = {
        "ticket_id": ticket_id,
        "kind": kind,
        "sender": mail.sender,
        "to_addr": recipients[0].lower() if recipients else "",
        "recipients": [r.lower() for r in recipients],
        "message_id": mail.message_id,
        "content": mail.content,
        "status": QUEUED,
        "next_attempt_at": now,
        "attempts": 0,
        "last_error": "",
        "created_at": now,
        "sent_at": None,
    }
    return insert_values(session.connection(), table_of(Outbox), row)


@dataclass(frozen=True)
class Queued:
    """One claimed outbox row, as the transports need it, its try counted."""

    row_id: int
    message_id: str
    recipients: list[str]
    content: bytes
    attempts: int
    sender: str = ""
    """The support address the mail is from: its envelope sender, so that a brand's mail
    aligns with the brand's domain (SPF, DMARC) and its bounces come back there."""


_EARLIER = aliased(Outbox)
CLAIMABLE = (
    select(
        Outbox.id,
        Outbox.message_id,
        Outbox.recipients,
        Outbox.content,
        Outbox.attempts,
        Outbox.sender,
    )
    .where(
        Outbox.status == QUEUED,
        Outbox.next_attempt_at <= bindparam("now"),
        ~exists().where(
            _EARLIER.ticket_id == Outbox.ticket_id,
            _EARLIER.status == QUEUED,
            _EARLIER.id < Outbox.id,
        ),
    )
    .order_by(Outbox.next_attempt_at, Outbox.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
CLAIM = (
    update(Outbox)
    .where(Outbox.id.in_(bindparam("ids", expanding=True)))
    .values(
        next_attempt_at=bindparam("until"),
        attempts=Outbox.attempts + 1,
        claimed_by=bindparam("holder"),
    )
)
"""Built once: every run of every sender asks them, most of them for a few rows."""


def claim_due(
    session: Session, now: datetime, lease: timedelta, holder: str, limit: int = 50
) -> list[Queued]:
    """Take due rows for ``lease`` in ``holder``'s name; another sender skips them, and a
    crash only delays them (the holder restarted resumes them at once: `resume_claims`).

    A ticket's mail leaves in the order it was queued: a row waits while an earlier one of
    its ticket is still queued (deferred, or claimed by another sender). Rows are taken in
    the order of the due index, so a claim reads the first eligible rows, not every due one.
    """
    rows = run(session, CLAIMABLE, {"now": now, "limit": limit}).all()
    if rows:
        run(session, CLAIM, {"ids": [r.id for r in rows], "until": now + lease, "holder": holder})
    return [
        Queued(r.id, r.message_id, list(r.recipients), bytes(r.content), r.attempts + 1, r.sender)
        for r in rows
    ]


def resume_claims(session: Session, holder: str, now: datetime) -> int:
    """Rows this holder claimed before a crash are due again at once; a delivery that went
    out before the crash is then sent again (SMTP) or found already written (Maildir)."""
    result = session.execute(
        update(Outbox)
        .where(Outbox.status == QUEUED, Outbox.claimed_by == holder)
        .values(next_attempt_at=now, claimed_by=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# Delivery outcomes change one row by id, each in a short transaction of its own on a plain
# connection: a mail sent is marked at once, and no ORM session is needed for it.


def mark_sent(conn: Connection, row_id: int, now: datetime, note: str = "") -> None:
    """``note``: what the relay refused of a partly accepted mail."""
    values = {"status": SENT, "sent_at": now, "last_error": note, "content": b""}
    update_values(conn, table_of(Outbox), row_id, {**values, "claimed_by": None})


def mark_retry(conn: Connection, row_id: int, error: str, at: datetime) -> None:
    values = {"next_attempt_at": at, "last_error": error, "claimed_by": None}
    update_values(conn, table_of(Outbox), row_id, values)


def mark_failed(conn: Connection, row_id: int, error: str) -> None:
    values = {"status": FAILED, "last_error": error, "claimed_by": None}
    update_values(conn, table_of(Outbox), row_id, values)


def release(conn: Connection, row_ids: list[int], at: datetime) -> None:
    """Claimed rows not delivered because the relay failed: their try does not count."""
    conn.execute(
        update(Outbox)
        .where(Outbox.id.in_(row_ids), Outbox.status == QUEUED)
        .values(next_attempt_at=at, attempts=Outbox.attempts - 1, claimed_by=None)
    )


def retry(session: Session, now: datetime, row_id: int | None = None) -> list[int]:
    """Failed mail back in the queue, due at once with a fresh count of attempts: one row,
    or every failed one. Returns the ids requeued."""
    query = select(Outbox.id).where(Outbox.status == FAILED)
    if row_id is not None:
        query = query.where(Outbox.id == row_id)
    ids = list(session.scalars(query.order_by(Outbox.id)))
    if ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids))
            .values(status=QUEUED, attempts=0, next_attempt_at=now, claimed_by=None)
        )
    return ids


def rows(session: Session, statuses: tuple[str, ...], limit: int) -> list[Outbox]:
    """The newest rows in these states, for `outbox list`."""
    query = select(Outbox).where(Outbox.status.in_(statuses))
    return list(session.scalars(query.order_by(Outbox.id.desc()).limit(limit)))


def waiting_for(session: Session, row: Outbox) -> int | None:
    """The earlier queued mail of the same ticket that this one waits for, if any."""
    if row.ticket_id is None:
        return None
    return session.scalar(
        select(func.min(Outbox.id)).where(
            Outbox.ticket_id == row.ticket_id, Outbox.status == QUEUED, Outbox.id < row.id
        )
    )


def count_recent(
    session: Session,
    kinds: tuple[str, ...],
    since: datetime,
    *,
    to_addr: str | None = None,
    ticket_id: int | None = None,
    cap: int | None = None,
) -> int:
    """Automatic mails of these kinds queued since then: to one address, for one ticket, or all.

    Counted from the outbox itself, so the window survives restarts and is shared by every
    instance on the same database. With ``cap`` the count stops there: a limit only needs
    to know it is reached, and a busy hour then costs no more than the limit to count.
    """
    statement = _recent(to_addr is not None, ticket_id is not None, cap is not None)
    params = {"kinds": kinds, "since": since, "to_addr": (to_addr or "").lower()}
    return run(session, statement, {**params, "ticket_id": ticket_id, "cap": cap}).scalar() or 0


def autoreply_history(
    session: Session,
    *,
    address: str,
    ticket_id: int | None,
    own_kinds: tuple[str, ...],
    all_kinds: tuple[str, ...],
    now: datetime,
    cap: int,
) -> Any:
    """What the acknowledgement policy weighs, in one statement: our mail of ``own_kinds``
    to the address in the last day and (given ``ticket_id``) for the ticket in the last
    hour, all mail of ``all_kinds`` in the last hour counted up to ``cap``, and the reason
    and end of the address's suppression, if one is running."""
    params = {
        "address": address.lower(),
        "ticket_id": ticket_id,
        "day": now - timedelta(days=1),
        "hour": now - timedelta(hours=1),
        "now": now,
        "cap": cap,
    }
    (found,) = query(session, _history(ticket_id is not None, own_kinds, all_kinds), params)
    return found


@functools.cache
def _history(for_ticket: bool, own: tuple[str, ...], every: tuple[str, ...]) -> Select[Any]:
    """Built once per shape and kinds (the policy's constants), which it holds as values:
    the statement then has SQL of its own, compiled once, as every acknowledgement asks it."""

    def count(kinds: tuple[str, ...], since: str, *where: Any, capped: bool = False) -> Any:
        rows = select(Outbox.id).where(
            Outbox.kind.in_([literal(kind) for kind in kinds]),
            Outbox.created_at >= bindparam(since),
            *where,
        )
        if capped:
            rows = rows.limit(bindparam("cap"))
        return select(func.count()).select_from(rows.subquery()).scalar_subquery()

    for_ticket_last_hour = (
        count(own, "hour", Outbox.ticket_id == bindparam("ticket_id")) if for_ticket else literal(0)
    )
    return select(
        count(own, "day", Outbox.to_addr == bindparam("address")).label("to_sender_last_day"),
        for_ticket_last_hour.label("for_ticket_last_hour"),
        count(every, "hour", capped=True).label("total_last_hour"),
        suppressions.active(Suppression.reason).label("suppressed_reason"),
        suppressions.active(Suppression.until).label("suppressed_until"),
    )


@functools.cache
def _recent(to_addr: bool, ticket_id: bool, capped: bool) -> Select[int]:
    """The counting statement of each shape, built once: the rate limits ask three times for
    every acknowledgement, and building a statement costs more than running it."""
    rows = select(Outbox.id).where(
        Outbox.kind.in_(bindparam("kinds", expanding=True)),
        Outbox.created_at >= bindparam("since"),
    )
    if to_addr:
        rows = rows.where(Outbox.to_addr == bindparam("to_addr"))
    if ticket_id:
        rows = rows.where(Outbox.ticket_id == bindparam("ticket_id"))
    if capped:
        rows = rows.limit(bindparam("cap"))
    return select(func.count()).select_from(rows.subquery())


SENT_WITH = select(Outbox.recipients).where(
    Outbox.ticket_id == bindparam("ticket_id"),
    Outbox.message_id.in_(bindparam("ids", expanding=True)),
)


def recipients_of(session: Session, ticket_id: int, message_ids: Iterable[str]) -> set[str]:
    """Who received the ticket's mail that we sent with these Message-IDs: the people a
    reply or a bounce naming one of them can speak of."""
    ids = list(dict.fromkeys(i for m in message_ids for i in (m, m.lower())))
    if not ids:
        return set()
    rows = run(session, SENT_WITH, {"ticket_id": ticket_id, "ids": ids}).scalars()
    return {address.lower() for recipients in rows for address in recipients}


def summary(session: Session) -> dict[str, int]:
    """Rows by status, for `postdesk status`."""
    rows = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
    counts = {QUEUED: 0, SENT: 0, FAILED: 0}
    counts.update({status: n for status, n in rows})
    return counts


def oldest_queued(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Outbox.created_at)).where(Outbox.status == QUEUED))
