"""Raw messages through the whole flow: store, parse, thread, rules, reply.

A group of messages (one alone, a batch of files, the listener's concurrent sessions, an
IMAP chunk) shares one durable raw write and one transaction, each message in its own
SAVEPOINT: one that fails rolls back alone and gets its own outcome, the others commit
together, and only then is any caller answered (250, exit 0, IMAP move). A second delivery
of the same bytes, or of the same Message-ID from the same sender with the same content,
is recognised and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from postdesk.config.errors import BadData, TemporaryFailure
from postdesk.daemon import clock
from postdesk.daemon.app import App
from postdesk.daemon.counters import INGESTED
from postdesk.daemon.pipeline import agents, on_behalf
from postdesk.daemon.pipeline.bounces import record_bounce
from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.pipeline.result import (
    APPENDED,
    DUPLICATE,
    QUARANTINED,
    SAME_BYTES,
    SUPPRESSED,
    IngestResult,
    Received,
    finish,
)
from postdesk.daemon.pipeline.surveys import survey_answer
from postdesk.daemon.pipeline.tickets import follow
from postdesk.parsers import parse
from postdesk.parsers.model import InboundMessage, Kind, ParseContext
from postdesk.store import inbound as received_rows
from postdesk.store import raw as raw_store
from postdesk.store.db import first_line, query
from postdesk.store.models import Inbound, Ticket
from postdesk.store.tickets import add_event, find_thread

log = logging.getLogger("postdesk.ingest")


@dataclass(frozen=True)
class Delivery:
    """One message as its sender handed it in."""

    raw: bytes
    source: str
    envelope_to: tuple[str, ...] = ()


Outcome = IngestResult | Exception
"""A message's result, or why it was not taken (TemporaryFailure, or the error of a bug):
nothing of it committed, and its sender keeps it."""


def ingest(
    app: App,
    raw: bytes,
    source: str,
    now: datetime | None = None,
    envelope_to: tuple[str, ...] = (),
) -> IngestResult:
    """Store and process one message; TemporaryFailure means nothing was committed."""
    (outcome,) = ingest_group(app, [Delivery(raw, source, envelope_to)], now)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def ingest_group(
    app: App,
    deliveries: Sequence[Delivery],
    now: datetime | None = None,
    ahead: ParseAhead | None = None,
) -> list[Outcome]:
    """Store and process several messages in one transaction; an outcome per delivery, in
    order, once the group committed. TemporaryFailure raised means nothing committed.

    The first message is parsed before the transaction; with ``ahead`` the others are
    parsed by its worker while this process writes the ones before, else here before the
    transaction. The raw bytes are written and made durable by another thread meanwhile,
    and their rows join the transaction last, once they are on the disk: nothing commits
    (and no sender hears "stored") before its bytes would survive a power cut. Whether the
    bytes were seen before is asked inside the transaction that records them. A constraint
    the database enforces other than the one on the raw bytes is a bug or a race, never a
    duplicate: that message is a temporary failure, so its sender keeps the mail (its raw
    bytes stay and are recovered at the next start).
    """
    now = now or clock.now()
    items = [(d.raw, app.parse_context(envelope_to=d.envelope_to)) for d in deliveries]
    results = (
        ahead.parse_group(_parse, items)
        if ahead is not None
        else iter([_parse(raw, ctx) for raw, ctx in items])
    )
    first = list(islice(results, 1))
    stored = app.raw.put_group_soon([d.raw for d in deliveries])
    parsed: list[Parsed] = []
    outcomes: list[Outcome] = []
    try:
        with app.db.transaction() as session:
            for delivery, message in zip(deliveries, chain(first, results), strict=True):
                parsed.append(message)
                outcomes.append(_one(app, session, delivery, message, now))
            raw_store.record(session, stored.result())
    except Exception as exc:
        # a full disk refuses the bytes and the database's pages alike: the raw store says why
        refused = stored.exception()
        if refused is not None and refused is not exc:
            raise refused from exc
        raise
    for delivery, message, outcome in zip(deliveries, parsed, outcomes, strict=True):
        if isinstance(outcome, IngestResult):
            _ingested(delivery, message, outcome)
    return outcomes


Parsed = InboundMessage | str | TemporaryFailure
"""The parsed message, the reason it goes to the quarantine, or why it cannot be taken now."""


def _parse(raw: bytes, ctx: ParseContext) -> Parsed:
    """Never raises: it may run in the parse worker, whose exception would be lost."""
    try:
        return parse(raw, ctx)
    except BadData as exc:
        return str(exc)
    except TemporaryFailure as exc:
        return exc
    except Exception as exc:
        log.exception("parser failed", extra={"sha256": hashlib.sha256(raw).hexdigest()})
        return f"parser error: {exc!r}"


def _sha256(delivery: Delivery) -> str:
    return hashlib.sha256(delivery.raw).hexdigest()


def _one(app: App, session: Session, delivery: Delivery, parsed: Parsed, now: datetime) -> Outcome:
    """One message in its own savepoint. A failed connection fails the whole group; any
    other error rolls back this message alone."""
    if isinstance(parsed, TemporaryFailure):
        return parsed
    try:
        with session.begin_nested():
            if isinstance(parsed, str):
                return _quarantine(session, delivery, parsed, now)
            return _process(app, session, parsed, delivery.source, now)
    except IntegrityError as exc:
        log.exception(
            "constraint violated; message left with its sender",
            extra={"sha256": _sha256(delivery)},
        )
        failure = TemporaryFailure(f"database constraint violated: {first_line(exc)}")
        failure.__cause__ = exc
        return failure
    except OperationalError:
        raise
    except Exception as exc:
        log.exception("message failed; left with its sender", extra={"sha256": _sha256(delivery)})
        return exc


def _ingested(delivery: Delivery, parsed: Parsed, result: IngestResult) -> None:
    """Counted and logged once committed; mail that could not be parsed only when it went
    to the quarantine."""
    if not isinstance(parsed, InboundMessage):
        if result.outcome == QUARANTINED:
            log.warning(
                "message quarantined", extra={"sha256": _sha256(delivery), "reason": result.reason}
            )
        return
    INGESTED.inc(delivery.source, result.outcome)
    log.info(
        "message ingested",
        extra={
            "source": delivery.source,
            "outcome": result.outcome,
            "ticket": result.ticket_number,
            "reason": result.reason,
            "message_id": parsed.message_id,
        },
    )


CONCURRENT = IngestResult(DUPLICATE, reason="received concurrently by another process")


def _known(session: Session, sha256: str) -> bool:
    return session.scalar(select(Inbound.id).where(Inbound.sha256 == sha256)) is not None


def _quarantine(session: Session, delivery: Delivery, reason: str, now: datetime) -> IngestResult:
    sha256 = _sha256(delivery)
    if _known(session, sha256):
        return SAME_BYTES
    row_id = received_rows.receive(
        session,
        sha256=sha256,
        source=delivery.source,
        size=len(delivery.raw),
        received_at=now,
        status=QUARANTINED,
        reason=reason,
    )
    if row_id is None:
        return CONCURRENT
    return IngestResult(QUARANTINED, reason=reason)


def _process(
    app: App, session: Session, msg: InboundMessage, source: str, now: datetime
) -> IngestResult:
    seen, original = _seen(session, msg)
    if seen:
        return SAME_BYTES
    row = {
        "sha256": msg.raw_sha256,
        "message_id": msg.message_id,
        "content_sha256": msg.content_sha256,
        "envelope_to": list(msg.envelope_to) or None,
        "from_addr": msg.from_addr,
        "subject": msg.subject[:2000],
        "source": source,
        "size": msg.size,
        "received_at": now,
    }
    if original is not None:
        reason = f"same Message-ID and content as inbound #{original}"
        if received_rows.receive(session, **row, status=DUPLICATE, reason=reason) is None:
            return CONCURRENT
        return IngestResult(DUPLICATE, reason=reason)
    row_id = received_rows.receive(session, **row, status="")
    if row_id is None:
        return CONCURRENT
    inbound = Received(row_id, source)
    thread = find_thread(session, msg, app.settings.agent_addresses)
    if msg.kind == Kind.BOUNCE and msg.token_tickets:
        bounced = session.get(Ticket, msg.token_tickets[0])
        if bounced is not None:
            notices = record_bounce(app, session, bounced, msg, inbound, now)
            reason = f"bounce of our mail: {msg.kind_reason}"
            done = finish(session, inbound, SUPPRESSED, reason, bounced)
            return IngestResult(done.outcome, done.ticket_number, done.reason, notices)
    if msg.kind == Kind.SURVEY_ANSWER:
        return survey_answer(app, session, inbound, msg, now)
    if msg.kind == Kind.AGENT:
        ticket_id = agents.token_ticket(app, msg)
        target = session.get(Ticket, ticket_id) if ticket_id else thread.ticket
        if target is not None:
            reason, queued, landed = agents.handle(app, session, target, msg, inbound.id, now)
            finish(session, inbound, APPENDED, reason, landed)
            return IngestResult(APPENDED, landed.number, reason, queued)
        if on_behalf.wanted(msg):
            return on_behalf.open_for_customer(app, session, inbound, msg, thread, now)
    if msg.kind not in (Kind.CUSTOMER, Kind.AGENT):
        if thread.ticket is not None:
            add_event(
                thread.ticket,
                actor=msg.from_addr or "(none)",
                type="automatic_mail",
                now=now,
                kind=str(msg.kind),
                reason=msg.kind_reason,
                inbound=inbound.id,
            )
        return finish(session, inbound, SUPPRESSED, f"{msg.kind}: {msg.kind_reason}", thread.ticket)
    return follow(app, session, inbound, msg, thread, now)


SEEN = select(Inbound.id, Inbound.sha256, Inbound.content_sha256).where(
    or_(
        Inbound.sha256 == bindparam("sha256"),
        and_(
            Inbound.message_id == bindparam("message_id"), Inbound.from_addr == bindparam("sender")
        ),
    )
)
"""Built once, as it is asked for every message."""


def _seen(session: Session, msg: InboundMessage) -> tuple[bool, int | None]:
    """Whether these exact bytes were received before, else an earlier inbound with the same
    Message-ID from the same sender and the same content (a copy that relays re-encoded or
    stamped with other trace fields), asked in one query. A row from before content hashes
    were recorded (None) counts as the same content, as it did when it was received."""
    rows = query(
        session,
        SEEN,
        {"sha256": msg.raw_sha256, "message_id": msg.message_id or None, "sender": msg.from_addr},
    )
    if any(row.sha256 == msg.raw_sha256 for row in rows):
        return True, None
    same = (int(row.id) for row in rows if row.content_sha256 in (None, msg.content_sha256))
    return False, min(same, default=None)
