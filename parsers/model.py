"""Plain data passed from parsing to the later stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

StoreBlob = Callable[[bytes | Iterator[bytes]], str]
"""Stores an attachment's bytes, or the chunks of one streamed from a large message, and
returns its sha256 key."""


class Kind(StrEnum):
    """What a message is, which decides whether it may become a ticket or get a reply."""

    BOUNCE = "bounce"
    AUTOREPLY = "autoreply"
    BULK = "bulk"
    LOOP = "loop"
    CUSTOMER = "customer"
    AGENT = "agent"
    SURVEY_ANSWER = "survey_answer"


@dataclass(frozen=True)
class Attachment:
    filename: str
    """Sanitised: no path separators, control or bidi characters; never empty."""
    content_type: str
    size: int
    sha256: str
    """Key of the content in the blob store (hex digest of the decoded bytes)."""
    inline: bool = False
    stored: bool = True
    """False when the content was over the size limit: only the raw message keeps it."""


@dataclass(frozen=True)
class Command:
    """An agent command such as ``#assign bob``, found in the first lines of a reply."""

    name: str
    argument: str = ""
    line: str = ""


@dataclass(frozen=True)
class Forwarded:
    """A customer's message that an agent's mail forwards, as far as the forward shows it."""

    form: str
    """How it was found: ``attached message`` or the client whose inline block it was."""
    from_addr: str
    """Lower-case; '' when the forward does not show a readable address."""
    from_name: str
    subject: str
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    message_id: str | None
    headers: dict[str, str]
    """The enclosed message's fields for an attached one; none for an inline block."""
    note: str
    """The agent's own text above the forward, commands included."""
    note_attachments: tuple[Attachment, ...] = ()
    """The agent's own files beside an attached message."""


@dataclass(frozen=True)
class ParseContext:
    """What the parser must know about this installation to classify and thread."""

    own_addresses: frozenset[str] = frozenset()
    agent_addresses: frozenset[str] = frozenset()
    secret: bytes = b""
    loop_marker: str = "postdesk"
    store_blob: StoreBlob | None = None
    """Receives each attachment to keep; None keeps nothing."""
    max_attachment_bytes: int = 25 * 1024 * 1024
    envelope_to: tuple[str, ...] = ()
    """The envelope recipients the delivery named (RCPT TO, ``ingest --recipient``), if any."""


@dataclass(frozen=True)
class InboundMessage:
    raw_sha256: str
    message_id: str | None
    """Without angle brackets; None when the message has none."""
    subject: str
    from_addr: str
    """Lower-case address; '' when the message names no usable sender."""
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    return_path: str | None
    """None when absent; '' for the null reverse path ``<>``."""
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    """The whole text body (HTML converted to text when there is no text part)."""
    html: str | None
    new_text: str
    """The new part of a reply: quotes and signature removed."""
    attachments: tuple[Attachment, ...]
    headers: dict[str, str]
    """Lower-case header names, first occurrence, decoded to text."""
    kind: Kind
    kind_reason: str
    ticket_number: int | None
    """From a ``[#N]`` subject tag; counts only for participants."""
    token_tickets: tuple[int, ...]
    """Ticket ids proven by a valid HMAC token in a ``support+TOKEN@`` recipient
    or in a referenced Message-ID that we sent."""
    bounced_recipients: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    agent_tokens: tuple[str, ...] = ()
    """Unverified ``a<ticket>x<mac>`` tokens from ``support+TOKEN@`` recipients: an agent's
    reply address; only the daemon, knowing the sender, can check one."""
    survey_tokens: tuple[str, ...] = ()
    """Unverified ``s<ticket>v<score>x<mac>`` tokens: a click on a survey link."""
    trace: tuple[tuple[str, str], ...] = ()
    """The ``received`` and ``authentication-results`` fields as (name, value), top to
    bottom: which verdicts to trust depends on where they stand (the daemon's call)."""
    reply_address_tickets: tuple[int, ...] = ()
    """Ticket ids proven by a signed token in a ``support+TOKEN@`` recipient address."""
    sent_message_ids: tuple[str, ...] = ()
    """Our own Message-IDs (``pd.TOKEN.*``) named in a bounce, its returned original included:
    the mail the bounce is about."""
    defects: tuple[str, ...] = field(default=())
    size: int = 0
    content_sha256: str = ""
    """Subject, text, HTML and attachments, hashed: what a copy delivered again keeps while
    its trace fields (Received, Delivered-To, Authentication-Results) and transfer encoding
    change. The same Message-ID and sender with another content hash is another message."""
    envelope_to: tuple[str, ...] = ()
    """Lower-case envelope recipients: the delivery's own, else Delivered-To/X-Original-To."""
    forwarded: Forwarded | None = None
    """The customer's message an agent's mail forwards (read for agents' mail only)."""
