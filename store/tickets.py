"""Tickets: threading a message to its ticket, recording messages and events, views for the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, inspect, select, update
from sqlalchemy.orm import Session, make_transient_to_detached, object_session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from postdesk.parsers.model import InboundMessage
from postdesk.parsers.references import base_address
from postdesk.store.db import insert_row, insert_values, query, run, table_of
from postdesk.store.models import AttachmentRow, Counter, Event, Message, Participant, Ticket
from postdesk.store.temperature import temperature

OPEN_STATES = ("new", "open", "pending", "on_hold")


@dataclass(frozen=True)
class Thread:
    """Where a message belongs: a ticket it may join, or a ticket it only mentions."""

    ticket: Ticket | None
    how: str
    related: Ticket | None = None


def find_thread(session: Session, msg: InboundMessage, agents: frozenset[str]) -> Thread:
    """Strongest reference first; a reference counts only for a participant or an agent.
    A reference to a merged ticket is one to the ticket it was merged into."""
    sender = msg.from_addr
    related: Ticket | None = None

    def allowed(ticket: Ticket) -> bool:
        return sender in agents or is_participant(session, ticket.id, sender)

    for ticket_id in msg.token_tickets:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            continue
        ticket = surviving(session, ticket)
        if allowed(ticket):
            return Thread(ticket, "reply token")
        related = related or ticket
    refs = [*msg.in_reply_to, *reversed(msg.references)]
    if refs:
        rows = run(session, BY_MESSAGE_ID, {"ids": refs}).all()
        found: dict[str, int] = {row.message_id: row.ticket_id for row in rows}
        for ref in refs:
            if ref in found:
                ticket = session.get(Ticket, found[ref])
                if ticket is not None and allowed(ticket):
                    return Thread(ticket, "In-Reply-To/References")
                related = related or ticket
    if msg.ticket_number is not None:
        ticket = session.scalar(select(Ticket).where(Ticket.number == msg.ticket_number))
        if ticket is not None:
            ticket = surviving(session, ticket)
            if allowed(ticket):
                return Thread(ticket, "subject tag")
            related = related or ticket
    return Thread(None, "", related)


# Statements of every message, built once: building one costs more than running it.
PARTICIPANT = select(Participant.id).where(
    Participant.ticket_id == bindparam("ticket_id"), Participant.email == bindparam("email")
)
NEXT_NUMBER = (
    update(Counter)
    .where(Counter.name == "ticket")
    .values(value=Counter.value + 1)
    .returning(Counter.value)
)
PARTICIPANTS = select(Participant.email).where(Participant.ticket_id == bindparam("ticket_id"))
BY_MESSAGE_ID = select(Message.message_id, Message.ticket_id).where(
    Message.message_id.in_(bindparam("ids", expanding=True))
)
KNOWN_CUSTOMER = select(Ticket.id).where(Ticket.requester == bindparam("address")).limit(1)


def open_ticket(session: Session, ticket: Ticket) -> None:
    """Insert a new ticket with one statement and attach it to the session as if loaded.

    Every column must be set on ``ticket``. Its participants, messages and events are
    known to be none yet, so reading them costs no query; rows added to them are written
    one statement each, with no flush.
    """
    insert_row(session, ticket)
    make_transient_to_detached(ticket)
    session.add(ticket)
    for collection in ("participants", "messages", "events"):
        set_committed_value(ticket, collection, [])


def is_participant(session: Session, ticket_id: int, email: str) -> bool:
    return bool(query(session, PARTICIPANT, {"ticket_id": ticket_id, "email": email.lower()}))


def next_number(session: Session) -> int:
    """The next ticket number; the counter row's lock serialises concurrent creators."""
    value = next((row.value for row in query(session, NEXT_NUMBER, {})), None)
    if value is None:
        raise RuntimeError("the ticket counter row is missing: run `postdesk db upgrade`")
    return int(value)


def pick_assignee(session: Session, candidates: list[str], strategy: str, queue: str) -> str | None:
    """Round robin continues after the queue's last assignee; least loaded counts open tickets."""
    if not candidates:
        return None
    if strategy == "least_loaded":
        load = dict(
            session.execute(
                select(Ticket.assignee, func.count())
                .where(Ticket.assignee.in_(candidates), Ticket.status.in_(OPEN_STATES))
                .group_by(Ticket.assignee)
            ).all()
        )
        return min(candidates, key=lambda a: (load.get(a, 0), candidates.index(a)))
    last = session.scalar(
        select(Ticket.assignee)
        .where(Ticket.queue == queue, Ticket.assignee.in_(candidates))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    return candidates[(candidates.index(last) + 1) % len(candidates)] if last else candidates[0]


def is_known_customer(session: Session, address: str) -> bool:
    return bool(query(session, KNOWN_CUSTOMER, {"address": address}))


def add_participants(
    session: Session,
    ticket: Ticket,
    entries: Iterable[tuple[str, str]],
    exclude: Iterable[str],
) -> list[str]:
    """Add (address, role) pairs in order, skipping ours and the addresses already there;
    returns those added."""
    roles: dict[str, str] = {}
    for address, role in entries:
        roles.setdefault(address.lower(), role)
    added = newcomers(ticket, roles, exclude)
    for email in added:
        _add_row(session, ticket, Participant, {"email": email, "role": roles[email]})
    return added


def newcomers(ticket: Ticket, addresses: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """The addresses, lower-cased and in order, that are neither ours (``support+TOKEN@``
    included) nor already on the ticket."""
    ours = {a.lower() for a in exclude}
    skip = _present(ticket)
    found = dict.fromkeys(a.lower() for a in addresses)
    return [e for e in found if e and e not in skip and base_address(e) not in ours]


def _present(ticket: Ticket) -> set[str]:
    """The ticket's participants: from its collection when that is loaded, else with one
    query that builds no objects. Participant rows are written at once (``_add_row``), so
    nothing pending needs a flush first, and the ticket's own changes wait for one UPDATE."""
    if _loaded(ticket, "participants"):
        return {p.email for p in ticket.participants}
    session = object_session(ticket)
    if session is None:
        raise RuntimeError("reading participants needs a ticket that is in a session")
    found = session.connection().execute(PARTICIPANTS, {"ticket_id": ticket.id})
    return set(found.scalars())


def record_inbound(
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    *,
    inbound_id: int,
    kind: str,
    now: datetime,
    body: str | None = None,
) -> Message:
    """The customer's or agent's mail on the ticket; ``body`` replaces its text (a note
    keeps only what follows the commands)."""
    message = Message(
        inbound_id=inbound_id,
        direction="in",
        kind=kind,
        from_addr=msg.from_addr,
        to_addrs=list(msg.to),
        cc_addrs=list(msg.cc),
        subject=msg.subject,
        body=msg.text if body is None else body,
        new_text=msg.new_text,
        author=msg.from_addr if kind in ("agent", "note") else None,
        html=msg.html,
        message_id=msg.message_id,
        created_at=now,
    )
    _add_message(session, ticket, message)
    for a in msg.attachments:
        row = AttachmentRow(
            message_id=message.id,
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            inline=a.inline,
            stored=a.stored,
        )
        insert_row(session, row)
        message.attachments.append(row)
    if ticket.updated_at != now:  # a ticket this message opened has it: no flush for nothing
        ticket.updated_at = now
    return message


def record_outbound(
    session: Session,
    ticket: Ticket,
    *,
    kind: str,
    from_addr: str,
    to: Sequence[str],
    subject: str,
    body: str,
    message_id: str,
    now: datetime,
    inbound_id: int | None = None,
    author: str | None = None,
) -> Message:
    """Our mail on the ticket; ``inbound_id`` names the agent's mail it relays, ``author``
    the agent who wrote it."""
    message = Message(
        inbound_id=inbound_id,
        direction="out",
        kind=kind,
        from_addr=from_addr,
        to_addrs=list(to),
        cc_addrs=[],
        subject=subject,
        body=body,
        new_text=None,
        author=author,
        html=None,
        message_id=message_id,
        created_at=now,
    )
    _add_message(session, ticket, message)
    return message


def add_event(ticket: Ticket, *, actor: str, type: str, now: datetime, **data: Any) -> None:
    session = object_session(ticket)
    if session is None:
        raise RuntimeError("an event needs a ticket that is in a session")
    _add_row(session, ticket, Event, {"actor": actor, "type": type, "at": now, "data": data})


def _add_message(session: Session, ticket: Ticket, message: Message) -> None:
    """A message is kept as an object too: its caller shows it to the agents."""
    message.ticket_id = ticket.id
    insert_row(session, message)
    _expire(session, ticket, "messages")


def _add_row(
    session: Session, ticket: Ticket, model: type[Participant | Event], values: dict[str, Any]
) -> None:
    """Write a row of the ticket at once, as its own statement and without an object of
    its own (building one costs more than the statement); a loaded collection of the
    ticket (named as the table) is expired, so that its next read sees the row. Appending to
    the collection instead would first load every earlier row, and cost a flush."""
    table = table_of(model)
    insert_values(session.connection(), table, {**values, "ticket_id": ticket.id})
    _expire(session, ticket, table.name)


def _expire(session: Session, ticket: Ticket, collection: str) -> None:
    if _loaded(ticket, collection):
        session.expire(ticket, [collection])


def _loaded(ticket: Ticket, collection: str) -> bool:
    """Whether the collection is loaded: it then lives in the instance's dict. Asking the
    state for every unloaded attribute builds a set of all of them, a few times a message."""
    return collection in inspect(ticket).dict


def move_records(session: Session, source: Ticket, target: Ticket) -> None:
    """Messages, events and participants of ``source`` become ``target``'s; a person already
    on ``target`` keeps the role held there."""
    session.flush()
    for model in (Message, Event):
        session.execute(
            update(model).where(model.ticket_id == source.id).values(ticket_id=target.id)
        )
    present = select(Participant.email).where(Participant.ticket_id == target.id)
    session.execute(
        delete(Participant).where(
            Participant.ticket_id == source.id, Participant.email.in_(present)
        )
    )
    session.execute(
        update(Participant).where(Participant.ticket_id == source.id).values(ticket_id=target.id)
    )
    session.expire(source, ["messages", "events", "participants"])
    session.expire(target, ["messages", "events", "participants"])


def surviving(session: Session, ticket: Ticket) -> Ticket:
    """The ticket mail about ``ticket`` belongs to: itself, or the one it was merged into."""
    seen = {ticket.id}
    while ticket.merged_into_id is not None and ticket.merged_into_id not in seen:
        found = session.get(Ticket, ticket.merged_into_id)
        if found is None:
            break
        seen.add(found.id)
        ticket = found
    return ticket


def load_ticket(session: Session, ref: str) -> Ticket | None:
    """By number (``42`` or ``#42``); the CLI speaks of the numbers customers see."""
    text = ref.strip().lstrip("#")
    if not text.isdigit():
        return None
    return session.scalar(
        select(Ticket)
        .where(Ticket.number == int(text))
        .options(
            selectinload(Ticket.messages).selectinload(Message.attachments),
            selectinload(Ticket.events),
            selectinload(Ticket.participants),
        )
    )


def list_tickets(session: Session, status: str | None, now: datetime) -> list[Ticket]:
    query = select(Ticket)
    if status:
        query = query.where(Ticket.status == status)
    tickets = list(session.scalars(query))
    tickets.sort(key=lambda t: (-temperature(t, now), t.number))
    return tickets


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def summary(ticket: Ticket, now: datetime) -> dict[str, Any]:
    """The `tickets list --json` object (DESIGN.md section 6)."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "queue": ticket.queue,
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "tags": list(ticket.tags),
        "temperature": temperature(ticket, now),
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "first_response_due": _iso(ticket.first_response_due),
        "resolution_due": _iso(ticket.resolution_due),
    }


def detail(ticket: Ticket, now: datetime) -> dict[str, Any]:
    """The `tickets show --json` object: the summary plus messages and events."""
    return {
        **summary(ticket, now),
        "language": ticket.language,
        "participants": [{"email": p.email, "role": p.role} for p in ticket.participants],
        "matched_rules": list(ticket.matched_rules),
        "reopen_count": ticket.reopen_count,
        "related_ticket": ticket.related_ticket_id,
        "messages": [
            {
                "direction": m.direction,
                "kind": m.kind,
                "from": m.from_addr,
                "to": list(m.to_addrs),
                "cc": list(m.cc_addrs),
                "subject": m.subject,
                "body": m.body,
                "new_text": m.new_text,
                "author": m.author,
                "created_at": _iso(m.created_at),
                "message_id": m.message_id,
                "attachments": [
                    {
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                        "sha256": a.sha256,
                    }
                    for a in m.attachments
                ],
            }
            for m in ticket.messages
        ],
        "events": [
            {"at": _iso(e.at), "actor": e.actor, "type": e.type, "data": e.data}
            for e in ticket.events
        ],
    }
