"""Raw bytes to an ``InboundMessage``; the only error it raises is ``BadData``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from postdesk.config.errors import BadData
from postdesk.parsers import mime
from postdesk.parsers.classify import bounced_recipients, classify
from postdesk.parsers.commands import commands
from postdesk.parsers.forwards import forwarded
from postdesk.parsers.model import Attachment, InboundMessage, Kind, ParseContext
from postdesk.parsers.quotes import new_part, split_reply
from postdesk.parsers.references import (
    agent_tokens,
    enclosed_message_ids,
    enclosed_tokens,
    message_ids,
    subject_tag,
    survey_tokens,
    token_tickets,
)

MAX_SUBJECT = 998
TRACE_FIELDS = ("received", "authentication-results")

__all__ = ["parse"]


def parse(raw: bytes, ctx: ParseContext) -> InboundMessage:
    parsed = mime.read(raw, ctx.store_blob, ctx.max_attachment_bytes)
    message = parsed.message
    if not message.keys():
        raise BadData("not a mail message: no header fields")
    headers = mime.headers(message, parsed.defects)
    senders = mime.addresses(message, "from", parsed.defects)
    if len(mime.raw_values(message, "from")) > 1 and len({a for _, a in senders}) > 1:
        raise BadData("several From fields name different senders")
    reply_to = mime.addresses(message, "reply-to", parsed.defects)
    if not senders:
        senders = mime.addresses(message, "sender", parsed.defects) or reply_to
        if senders:
            parsed.defects.append("no usable From; sender taken from Sender/Reply-To")
    from_name, from_addr = senders[0] if senders else ("", "")
    own = frozenset(a.lower() for a in ctx.own_addresses)
    kind, reason = classify(message, headers, from_addr, own, ctx.agent_addresses, ctx.loop_marker)
    recipients = [a for _, a in mime.addresses(message, "to", parsed.defects)]
    cc = [a for _, a in mime.addresses(message, "cc", parsed.defects)]
    delivered = [a for _, a in mime.addresses(message, "delivered-to", parsed.defects)]
    original_to = [a for _, a in mime.addresses(message, "x-original-to", parsed.defects)]
    surveyed = survey_tokens([*recipients, *cc, *delivered])
    if surveyed and kind == Kind.CUSTOMER:
        kind, reason = Kind.SURVEY_ANSWER, "answer to a satisfaction survey"
    if kind in (Kind.CUSTOMER, Kind.AGENT) and not from_addr:
        raise BadData("no sender address (From is missing or unreadable)")
    if not parsed.text.strip() and not parsed.attachments and _mime_broken(parsed.defects):
        raise BadData("no readable content: " + "; ".join(parsed.defects[:5]))
    subject = headers.get("subject", "")
    if len(subject) > MAX_SUBJECT:
        parsed.defects.append(f"subject of {len(subject)} characters cut to {MAX_SUBJECT}")
        subject = subject[:MAX_SUBJECT]
    in_reply_to = message_ids(headers.get("in-reply-to", ""))
    references = message_ids(headers.get("references", ""))
    new_text = new_part(parsed.text) if kind == Kind.AGENT else split_reply(parsed.text)
    forward = (
        forwarded(
            message,
            parsed.text,
            subject,
            parsed.attachments,
            ctx.store_blob,
            ctx.max_attachment_bytes,
        )
        if kind == Kind.AGENT
        else None
    )
    return_path = headers.get("return-path")
    message_id = message_ids(headers.get("message-id", ""))
    return InboundMessage(
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        message_id=message_id[0] if message_id else None,
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(recipients),
        cc=tuple(cc),
        reply_to=tuple(a for _, a in reply_to),
        return_path=None if return_path is None else return_path.strip("<> "),
        date=mime.date(message),
        in_reply_to=in_reply_to,
        references=references,
        text=parsed.text,
        html=parsed.html,
        new_text=new_text,
        attachments=tuple(parsed.attachments),
        headers=headers,
        kind=kind,
        kind_reason=reason,
        ticket_number=subject_tag(subject),
        token_tickets=token_tickets(
            ctx.secret, [*recipients, *cc, *delivered], [*in_reply_to, *references]
        )
        or (enclosed_tokens(ctx.secret, raw) if kind == Kind.BOUNCE else ()),
        bounced_recipients=bounced_recipients(message) if kind == Kind.BOUNCE else (),
        commands=commands(new_text) if kind == Kind.AGENT else (),
        agent_tokens=agent_tokens([*recipients, *cc, *delivered]),
        survey_tokens=surveyed,
        trace=tuple(
            (key, mime.header_text(value))
            for name, value in message.raw_items()
            if (key := name.strip().lower()) in TRACE_FIELDS
        ),
        reply_address_tickets=token_tickets(ctx.secret, [*recipients, *cc, *delivered], ()),
        sent_message_ids=enclosed_message_ids(ctx.secret, raw) if kind == Kind.BOUNCE else (),
        defects=tuple(parsed.defects),
        size=len(raw),
        content_sha256=_content_digest(subject, parsed.text, parsed.html, parsed.attachments),
        envelope_to=tuple(
            dict.fromkeys(a.lower() for a in ctx.envelope_to or [*delivered, *original_to])
        ),
        forwarded=forward,
    )


def _content_digest(
    subject: str, text: str, html: str | None, attachments: Sequence[Attachment]
) -> str:
    """The hash of what a message says, the same for every copy of it.

    Relays add trace fields and may re-encode the body (quoted-printable, base64, line ends,
    trailing blanks), so the raw bytes of a copy delivered again differ; its decoded subject,
    text, HTML and attachment contents do not.
    """
    digest = hashlib.sha256()
    for part in (subject, text, html or ""):
        lines = (line.rstrip() for line in part.splitlines())
        digest.update("\n".join(lines).strip().encode("utf-8", "surrogatepass") + b"\0")
    for attachment in attachments:
        digest.update(attachment.sha256.encode("ascii") + b"\0")
    return digest.hexdigest()


def _mime_broken(defects: list[str]) -> bool:
    return any("Boundary" in d or "Multipart" in d or "nesting" in d for d in defects)
