"""Mail that postdesk writes: composed from templates and queued in the caller's transaction."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

from sqlalchemy.orm import Session

from postdesk.autoreplies.render import Rendered, compose
from postdesk.autoreplies.wording import expected_response
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.addresses import (
    agent_reply_address,
    brand_from,
    message_id,
    reply_address,
    thread_root,
    ticket_address,
)
from postdesk.parsers.model import InboundMessage
from postdesk.rules.engine import Decision
from postdesk.store import outbox
from postdesk.store.models import Message, Ticket
from postdesk.store.tickets import add_event, record_outbound

log = logging.getLogger("postdesk.outgoing")

AUTOREPLIES = ("autoreply",)


CUSTOMER_AUTOMATIC = ("autoreply", "reminder", "notification", "survey")
"""Automatic mail to customers (acknowledgements, reminders, closing notices, surveys): the
acknowledgement circuit breaker counts these alone, so staff mail never silences customers."""


STAFF = ("agent_notification", "notice", "forgery_notice", "alert")
"""Mail to the team and the admin; it has a circuit breaker of its own. Alerts and the
managers' digests count towards it but are never stopped: they are at most one an hour or a
day, and an alert is how the admin hears that the breaker tripped."""


OFF_HOURS = "_offhours"


NO_TARGET = {
    "response_time": "",
    "response_by": "",
    "response_within": False,
    "closed_days": [],
    "business_hours": "",
    "open_now": False,
}


def _attachments(
    app: App, rows: Sequence[Any], limit: int
) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """Stored attachments to send along while they fit in ``limit``; the rest only named."""
    attached: list[tuple[str, str, bytes]] = []
    listed: list[str] = []
    total = 0
    for row in rows:
        if row.stored and total + row.size <= limit:
            try:
                attached.append((row.filename, row.content_type, app.blobs.get(row.sha256)))
                total += row.size
                continue
            except OSError:
                pass
        listed.append(f"{row.filename} ({row.size} bytes, kept on the ticket)")
    return attached, listed


def new_part(message: Message) -> list[str]:
    """The customer's new words first; the quoted history they carried is only mentioned."""
    new = (message.new_text or message.body).strip()
    rest = ["", "[quoted mail and signature left out]"] if new != message.body.strip() else []
    return [new, *rest]


def staff_mail_allowed(
    app: App,
    session: Session,
    ticket: Ticket,
    to: str,
    now: datetime,
    *,
    kind: str,
    per_hour: int | None,
) -> bool:
    """Whether staff mail of this kind about ``ticket`` may go to ``to``: within the staff
    circuit breaker and, given ``per_hour``, within that many of its kind to that address.
    Mail held back is an event on the ticket; a tripped breaker also alerts the admin (once
    an hour at most)."""
    notify = app.settings.notify
    hour = now - timedelta(hours=1)
    reason = ""
    with session.no_autoflush:
        total = outbox.count_recent(session, STAFF, hour, cap=notify.staff_breaker_per_hour)
        if total >= notify.staff_breaker_per_hour:
            reason = f"staff circuit breaker: {total} staff mails in the last hour"
            if queue_alert(app, session, "staff mail stopped", reason, now):
                log.warning("staff circuit breaker", extra={"reason": reason})
        elif (
            per_hour is not None
            and outbox.count_recent(session, (kind,), hour, to_addr=to, cap=per_hour) >= per_hour
        ):
            reason = f"rate limit: {per_hour} mails of kind {kind} to {to} in the last hour"
    if reason:
        add_event(
            ticket, actor="postdesk", type="staff_mail_suppressed", now=now, to=to, reason=reason
        )
    return not reason


def queue_agent_notification(
    app: App,
    session: Session,
    ticket: Ticket,
    agent: str,
    event: str,
    message: Message | None,
    now: datetime,
    withheld: Sequence[str] = (),
) -> bool:
    """Tell an agent what happened, with the customer's words and a reply address of their
    own; False when a limit held it back (the ticket records that). ``withheld`` are
    addresses the mail copied that did not become participants."""
    limit = app.settings.notify.max_per_agent_per_hour
    kind = "agent_notification"
    if not staff_mail_allowed(app, session, ticket, agent, now, kind=kind, per_hour=limit):
        return False
    sender = ticket_address(app, ticket)
    attached, listed = _attachments(
        app, message.attachments if message else [], app.settings.notify.attach_up_to
    )
    due = ticket.first_response_due if ticket.first_response_at is None else ticket.resolution_due
    lines = [
        f"Ticket #{ticket.number}: {ticket.subject}",
        f"Status {ticket.status}, priority {ticket.priority}, queue {ticket.queue}, "
        f"assignee {ticket.assignee or 'nobody'}",
        f"Requester {ticket.requester}; due {due.isoformat(timespec='minutes') if due else '-'}",
        "",
    ]
    if message is not None:
        lines += [f"{message.from_addr} wrote:", "", *new_part(message), ""]
    lines += [f"Attachment: {name}" for name in listed]
    if withheld:
        lines += [
            f"Also addressed, not copied on the ticket: {', '.join(withheld)}",
            "(this mail carries no reply token of ours, so it does not prove that its sender",
            "saw our mail; to copy one of them, answer with #cc ADDRESS)",
            "",
        ]
    lines += [
        "-- ",
        "Reply to this mail to answer the customer. Commands on the first lines:",
        "#close #resolve #pending #hold #open #assign <agent> #priority <p> #queue <q>",
        "#tag <t> #untag <t> #cc <address> #reply <canned answer> #note (internal only)",
    ]
    mail = compose(
        Rendered(f"[#{ticket.number}] {event}: {ticket.subject}", "\n".join(lines) + "\n"),
        from_addr=sender,
        to=agent,
        message_id=message_id(app, ticket, sender),
        date=now,
        in_reply_to=thread_root(app, ticket),
        references=[thread_root(app, ticket)],
        auto_submitted="auto-generated",
        loop_marker=app.loop_marker,
        extra_headers={"Reply-To": agent_reply_address(app, ticket, agent)},
        attachments=attached,
    )
    outbox.enqueue(session, mail=mail, kind=kind, recipients=[agent], now=now, ticket_id=ticket.id)
    return True


def queue_relay(
    app: App,
    session: Session,
    ticket: Ticket,
    author: str,
    agent_name: str,
    text: str,
    attachments: Sequence[Any],
    inbound_id: int,
    now: datetime,
) -> Message:
    """An agent's answer, sent to the customer and CCs from the support address; stored
    with its author, whom every per-agent figure counts. The brand's signature closes it."""
    sender = ticket_address(app, ticket)
    brand = app.settings.brand(sender)
    if brand.signature:
        text = f"{text.rstrip()}\n\n{brand.signature}"
    copies = [p.email for p in ticket.participants if p.role == "cc"]
    customer_ids = [m.message_id for m in ticket.messages if m.message_id]
    last_in = next(
        (m.message_id for m in reversed(ticket.messages) if m.direction == "in" and m.message_id),
        None,
    )
    answers = last_in is not None and not ticket.subject.lower().startswith("re:")
    subject = f"Re: {ticket.subject}" if answers else ticket.subject
    if f"[#{ticket.number}]" not in subject:
        subject = f"{subject} [#{ticket.number}]"
    files, _ = _attachments(app, attachments, app.settings.limits.max_attachment_bytes)
    mid = message_id(app, ticket, sender)
    team = brand.name or sender.partition("@")[0]
    display = f"{agent_name} ({team})" if agent_name else brand.name
    mail = compose(
        Rendered(subject, text.rstrip() + "\n"),
        from_addr=formataddr((display, sender)) if display else sender,
        to=ticket.requester,
        cc=copies,
        message_id=mid,
        date=now,
        in_reply_to=last_in,
        references=customer_ids,
        auto_submitted=None,
        loop_marker=None,
        extra_headers={"Reply-To": reply_address(app, ticket, sender)},
        attachments=files,
    )
    outbox.enqueue(
        session,
        mail=mail,
        kind="agent_reply",
        recipients=[ticket.requester, *copies],
        now=now,
        ticket_id=ticket.id,
    )
    return record_outbound(
        session,
        ticket,
        kind="agent",
        from_addr=sender,
        to=[ticket.requester, *copies],
        subject=subject,
        body=text,
        message_id=mid,
        now=now,
        inbound_id=inbound_id,
        author=author,
    )


def queue_acknowledgement(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    template: str,
    decision: Decision,
    now: datetime,
) -> None:
    settings = app.settings
    language = ticket.language or settings.language
    sla = settings.sla_for(ticket.queue, ticket.priority)
    calendar = app.playbook.calendar(ticket.queue)
    variables: dict[str, Any] = {
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "priority": ticket.priority,
            "queue": ticket.queue,
        },
        "customer_name": msg.from_name,
        **(expected_response(calendar, now, sla.first_response, language) if sla else NO_TARGET),
        "channels": [
            {"name": c.name, "value": c.value}
            for c in settings.channels
            if not c.for_ or ticket.priority in c.for_
        ],
        "links": [{"title": link.title, "url": link.url} for link in decision.links],
        "support_address": ticket_address(app, ticket),
    }
    templates = app.playbook.templates_for(ticket_address(app, ticket))
    if not calendar.is_open(now) and f"{template}{OFF_HOURS}" in templates.names():
        template += OFF_HOURS
    rendered = templates.render(template, language, variables, html=settings.autoreply.html)
    send_to_customer(
        app,
        session,
        ticket,
        rendered,
        "autoreply",
        now,
        in_reply_to=msg.message_id,
        references=msg.references,
        auto_submitted="auto-replied",
    )


def send_to_customer(
    app: App,
    session: Session,
    ticket: Ticket,
    rendered: Rendered,
    kind: str,
    now: datetime,
    *,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto_submitted: str = "auto-generated",
) -> None:
    """Queue automatic mail to the requester, from the ticket's brand, and record it.

    Without an explicit parent it threads under the ticket's latest message.
    """
    sender = ticket_address(app, ticket)
    if in_reply_to is None:
        known = [m.message_id for m in ticket.messages if m.message_id]
        in_reply_to, references = (known[-1], known[:-1]) if known else (None, ())
    mid = message_id(app, ticket, sender)
    mail = compose(
        rendered,
        from_addr=brand_from(app, ticket),
        to=ticket.requester,
        message_id=mid,
        date=now,
        in_reply_to=in_reply_to,
        references=references,
        auto_submitted=auto_submitted,
        loop_marker=app.loop_marker,
        extra_headers={"Reply-To": reply_address(app, ticket, sender)},
    )
    outbox.enqueue(
        session, mail=mail, kind=kind, recipients=[ticket.requester], now=now, ticket_id=ticket.id
    )
    record_outbound(
        session,
        ticket,
        kind=kind,
        from_addr=sender,
        to=[ticket.requester],
        subject=rendered.subject,
        body=rendered.text,
        message_id=mid,
        now=now,
    )


def queue_notice(
    app: App,
    session: Session,
    ticket: Ticket,
    to: str,
    subject: str,
    body: str,
    now: datetime,
    *,
    kind: str = "notice",
    per_hour: int | None = None,
) -> bool:
    """An internal notice to an agent about a ticket, threaded with the ticket's mail; within
    the staff circuit breaker and, given ``per_hour``, that many of its kind to ``to``."""
    if not staff_mail_allowed(app, session, ticket, to, now, kind=kind, per_hour=per_hour):
        return False
    sender = ticket_address(app, ticket)
    mail = compose(
        Rendered(f"[#{ticket.number}] {subject}: {ticket.subject}", body + "\n"),
        from_addr=sender,
        to=to,
        message_id=message_id(app, ticket, sender),
        date=now,
        in_reply_to=None,
        references=[m.message_id for m in ticket.messages if m.message_id][:1],
        auto_submitted="auto-generated",
        loop_marker=app.loop_marker,
        extra_headers={"Reply-To": reply_address(app, ticket, sender)},
    )
    outbox.enqueue(session, mail=mail, kind=kind, recipients=[to], now=now, ticket_id=ticket.id)
    return True


def queue_alert(app: App, session: Session, subject: str, body: str, now: datetime) -> bool:
    """Mail the admin address, at most once an hour, so an alert storm cannot start a loop."""
    admin = app.settings.admin_address
    if not admin or outbox.count_recent(
        session, ("alert",), now - timedelta(hours=1), to_addr=admin
    ):
        return False
    queue_internal(
        app,
        session,
        admin,
        subject,
        f"{body}\n\nThis alert is sent at most once an hour.",
        now,
        "alert",
    )
    return True


def queue_internal(
    app: App,
    session: Session,
    to: str,
    subject: str,
    body: str,
    now: datetime,
    kind: str,
    html: str | None = None,
) -> None:
    """Mail to the admin or the managers that belongs to no ticket (alerts, digests, reports)."""
    sender = app.settings.support_addresses[0]
    mail = compose(
        Rendered(f"[postdesk] {subject}", body + "\n", html),
        from_addr=sender,
        to=to,
        message_id=f"pd.{kind}.{secrets.token_hex(8)}@{sender.rpartition('@')[2]}",
        date=now,
        in_reply_to=None,
        references=(),
        auto_submitted="auto-generated",
        loop_marker=app.loop_marker,
    )
    outbox.enqueue(session, mail=mail, kind=kind, recipients=[to], now=now)


def render_ticket_mail(app: App, ticket: Ticket, name: str, extra: dict[str, object]) -> Rendered:
    """A customer-facing template about one ticket, in the ticket's language."""
    variables = {
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "priority": ticket.priority,
            "queue": ticket.queue,
        },
        "customer_name": "",
        "support_address": ticket_address(app, ticket),
        **extra,
    }
    templates = app.playbook.templates_for(ticket_address(app, ticket))
    return templates.render(name, ticket.language, variables)
