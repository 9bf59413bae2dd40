"""ORM models. Times are stored in UTC and always read back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets offsets; this keeps every datetime aware and in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Counter(Base):
    """Sequences that must be gap-tolerant but strictly increasing on every database."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class Inbound(Base):
    """Every raw message received, whatever became of it; the bytes live in data_dir/raw
    (store/raw.py)."""

    __tablename__ = "inbound"
    __table_args__ = (Index("ix_inbound_source", "source", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    """What a copy delivered again keeps: see ``InboundMessage.content_sha256``; None on rows
    received before it was recorded."""
    envelope_to: Mapped[list[str] | None] = mapped_column(JSON)
    """The envelope recipients (RCPT TO, ``ingest --recipient``), when the delivery named them."""
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(40))
    """smtp, lmtp, pipe, imap:<mailbox>, release: the intake counts by source read it."""
    size: Mapped[int]
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))


class RawPart(Base):
    """Where the raw bytes of a message received in a group are: its segment in
    data_dir/raw/segments and the record's place in it. A message stored alone has its own
    file and no row."""

    __tablename__ = "raw_parts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment: Mapped[str] = mapped_column(String(80))
    start: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int]


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    priority: Mapped[str] = mapped_column(String(20))
    queue: Mapped[str] = mapped_column(String(100))
    requester: Mapped[str] = mapped_column(String(320), index=True)
    assignee: Mapped[str | None] = mapped_column(String(320))
    tags: Mapped[list[str]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8))
    matched_rules: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_due: Mapped[datetime | None] = mapped_column(index=True)
    resolution_due: Mapped[datetime | None] = mapped_column(index=True)
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reopen_count: Mapped[int] = mapped_column(default=0)
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    """While pending: when the next reminder (or, after the last one, the close) is due."""
    reminders_sent: Mapped[int] = mapped_column(default=0)
    sla_check_at: Mapped[datetime | None] = mapped_column(index=True)
    """The next SLA warning or breach moment; None once nothing is left to check."""
    sla_flags: Mapped[list[str]] = mapped_column(default=list)
    csat_score: Mapped[int | None]
    unanswered: Mapped[int] = mapped_column(default=0)
    """Customer mails since the last agent answer: each one makes the ticket hotter."""
    related_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    brand: Mapped[str | None] = mapped_column(String(320))
    """The support address the ticket came in on: all its mail leaves from there."""
    """Set on a duplicate merged into another ticket: mail that still names it goes there."""
    sweep_hold_until: Mapped[datetime | None]
    """Set when a sweep failed on this ticket: no sweep takes it again before then."""

    participants: Mapped[list[Participant]] = relationship(
        back_populates="ticket", order_by="Participant.id"
    )
    messages: Mapped[list[Message]] = relationship(back_populates="ticket", order_by="Message.id")
    events: Mapped[list[Event]] = relationship(back_populates="ticket", order_by="Event.id")


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(20))
    ticket: Mapped[Ticket] = relationship(back_populates="participants")


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id"))
    direction: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(20))
    from_addr: Mapped[str] = mapped_column(String(320))
    to_addrs: Mapped[list[str]] = mapped_column(default=list)
    cc_addrs: Mapped[list[str]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    new_text: Mapped[str | None] = mapped_column(Text)
    """An incoming message's new part (quotes and signature removed), kept as parsed."""
    author: Mapped[str | None] = mapped_column(String(320))
    """The agent who wrote an agent message; ``from_addr`` is the support address it left from."""
    html: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    created_at: Mapped[datetime]
    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[AttachmentRow]] = relationship(order_by="AttachmentRow.id")


class AttachmentRow(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(default=False)
    stored: Mapped[bool] = mapped_column(default=True)


class Event(Base):
    """The audit trail: who did what to a ticket, and why."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ticket: Mapped[Ticket] = relationship(back_populates="events")


class Outbox(Base):
    """Composed mail waiting for delivery; written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_rate", "to_addr", "kind", "created_at"),
        Index("ix_outbox_recent", "kind", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    sender: Mapped[str] = mapped_column(String(320))
    to_addr: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(default=list)
    message_id: Mapped[str] = mapped_column(String(998))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    """The sender holding the row until next_attempt_at; None once it is retried or done."""


class Suppression(Base):
    """An address that gets no automatic mail until ``until``: hard bounces, tripped breakers."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    until: Mapped[datetime] = mapped_column(index=True)


class RelayState(Base):
    """Whether delivery through a transport is paused after a fault of the relay itself.

    Kept in the database so that every instance and `send-outbox` honour one pause, and a
    restart does not forget it.
    """

    __tablename__ = "relay_state"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    """Relay faults in a row: the backoff grows with them; a delivery resets it."""
    paused_since: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class MailboxState(Base):
    """Where each IMAP mailbox stands, so a restart or another instance resumes exactly there.

    ``last_uid`` only moves after a message is committed and moved, and only under a lease
    (``lease_holder`` until ``lease_expires_at``) so that one instance polls at a time.
    """

    __tablename__ = "mailbox_state"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_holder: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    connected: Mapped[bool] = mapped_column(default=False)
    last_success_at: Mapped[datetime | None]
    backlog: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
