"""An agent's new mail to support that opens a ticket for someone else: a forward of the
customer's message, or ``#to ADDRESS`` (DESIGN.md section 5).

Such mail names an address that postdesk will file mail for and write to, so it needs the
proof that commands need; with no ticket token to carry, that is a pass in an
Authentication-Results field of the trusted server. Unproven, or when whom to open the
ticket for cannot be read, the mail is the agent's own mail to support, as any other
agent's mail without a ticket is, and the agent is told why.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.addresses import support_address
from postdesk.daemon.outgoing.compose import queue_notice
from postdesk.daemon.pipeline import agents
from postdesk.daemon.pipeline.authentication import verdict
from postdesk.daemon.pipeline.result import CREATED, IngestResult, Received, finish
from postdesk.daemon.pipeline.tickets import (
    Opening,
    follow,
    record_created,
    rules_context,
    start,
    vouched,
)
from postdesk.parsers.commands import KNOWN, without_commands
from postdesk.parsers.model import Forwarded, InboundMessage, Kind
from postdesk.parsers.quotes import split_reply
from postdesk.parsers.references import base_address
from postdesk.rules.engine import evaluate
from postdesk.store.models import Ticket
from postdesk.store.tickets import Thread, add_event, add_participants

ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]]+@[^@\s<>,;:\"()\[\]]+")


def wanted(msg: InboundMessage) -> bool:
    """Whether the agent's mail asks to open a ticket for someone else."""
    return msg.forwarded is not None or any(c.name in agents.OPENING for c in msg.commands)


def open_for_customer(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    thread: Thread,
    now: datetime,
) -> IngestResult:
    proven = verdict(msg.trace, msg.from_addr, app.settings.agent_auth)
    if not proven.proof:
        return _own_mail(app, session, inbound, msg, thread, now, proven.why_not, unproven=True)
    why = _why_not(app, msg)
    if why:
        return _own_mail(app, session, inbound, msg, thread, now, why, unproven=False)
    if msg.commands and msg.commands[0].name == "to":
        return _outbound(app, session, inbound, msg, _address(msg.commands[0].argument), now)
    forward = msg.forwarded
    assert forward is not None  # _why_not said so
    given = next((c.argument for c in msg.commands if c.name == "requester"), None)
    requester = forward.from_addr if given is None else _address(given)
    return _forward(app, session, inbound, msg, forward, requester, now)


def _why_not(app: App, msg: InboundMessage) -> str:
    """Why the mail cannot open the ticket it asks for; '' when it can."""
    unknown = [c.line for c in msg.commands if c.name not in KNOWN]
    if unknown:
        return f"unknown command {unknown[0]!r}"
    named = [c for c in msg.commands if c.name in agents.OPENING]
    for command in named:
        address = _address(command.argument)
        if not address:
            return f"{command.line}: not an address"
        if base_address(address) in app.own_addresses:
            return f"{command.line}: that is a support address"
    if msg.commands and msg.commands[0].name == "to":
        if not without_commands(msg.new_text, msg.commands).strip():
            return "#to: there is no text below the commands to send"
        return ""
    if any(c.name == "to" for c in named):
        return "#to must be the first line of the mail"
    if msg.forwarded is None:
        return "#requester: no forwarded message was found in the mail"
    if not named and not msg.forwarded.from_addr:
        return (
            "the forwarded message's sender could not be read; write #requester ADDRESS "
            "as the first line and send it again"
        )
    if not named and base_address(msg.forwarded.from_addr) in app.own_addresses:
        return "the forwarded message is our own mail"
    return ""


def _address(argument: str) -> str:
    """The address of ``ann@example.org`` or ``Ann <ann@example.org>``; '' for anything else."""
    _, address = parseaddr(argument.strip())
    address = address.lower()
    return address if ADDRESS.fullmatch(address) else ""


def _forward(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    forward: Forwarded,
    requester: str,
    now: datetime,
) -> IngestResult:
    """The forwarded message becomes the customer's first mail on a new ticket; the agent's
    text above it is the agent's note, and the agent's commands apply."""
    customer = replace(
        msg,
        kind=Kind.CUSTOMER,
        from_addr=requester,
        from_name=forward.from_name if requester == forward.from_addr else "",
        subject=forward.subject,
        date=forward.date,
        text=forward.text,
        html=forward.html,
        new_text=split_reply(forward.text),
        attachments=forward.attachments,
        message_id=forward.message_id,
        headers=forward.headers,
        to=(),
        cc=(),
        reply_to=(),
        return_path=None,
        in_reply_to=(),
        references=(),
        commands=(),
        forwarded=None,
    )
    opening = Opening(
        agent=msg.from_addr,
        brand=support_address(app, msg),
        form=forward.form,
        sent_at=_placed(app, forward.date),
    )
    started = start(app, session, inbound, customer, None, now, opening)
    if isinstance(started, IngestResult):
        return started
    note = replace(msg, new_text=forward.note, attachments=forward.note_attachments)
    reason, queued, ticket = agents.handle(
        app, session, started.ticket, note, inbound.id, now, opened="forward"
    )
    finish(session, inbound, CREATED, reason, ticket)
    return IngestResult(CREATED, ticket.number, reason, started.queued + queued)


def _outbound(
    app: App, session: Session, inbound: Received, msg: InboundMessage, to: str, now: datetime
) -> IngestResult:
    """``#to ADDRESS``: a ticket for that address, opened by the agent's text sent to it."""
    context = rules_context(app, session, msg, inbound.source, now)
    decision = vouched(evaluate(app.playbook.rules, msg, context), msg.from_addr)
    ticket = ticket_state.create(
        app,
        session,
        subject=msg.subject,
        requester=to,
        brand=support_address(app, msg),
        decision=decision,
        related=None,
        now=now,
    )
    entries = [(to, "requester"), *((a, "watcher") for a in decision.watchers)]
    add_participants(session, ticket, entries, app.own_addresses)
    record_created(ticket, msg.from_addr, inbound, decision, now, opened_by=msg.from_addr)
    reason, queued, ticket = agents.handle(app, session, ticket, msg, inbound.id, now, opened="to")
    finish(session, inbound, CREATED, reason, ticket)
    return IngestResult(CREATED, ticket.number, reason, queued)


def _own_mail(
    app: App,
    session: Session,
    inbound: Received,
    msg: InboundMessage,
    thread: Thread,
    now: datetime,
    why: str,
    *,
    unproven: bool,
) -> IngestResult:
    """The agent's own mail to support, as without the request; the agent hears why, and
    mail that only claims an agent's From is a security event whose warnings are rate
    limited, so a forger cannot flood the agent."""
    result = follow(app, session, inbound, msg, thread, now)
    ticket = session.scalar(select(Ticket).where(Ticket.number == result.ticket_number))
    if ticket is None:
        return result
    asked = "a ticket for the forwarded message's sender"
    if msg.commands and msg.commands[0].name == "to":
        asked = f"a ticket for {_address(msg.commands[0].argument)}"
    add_event(
        ticket,
        actor=msg.from_addr,
        type="security" if unproven else "on_behalf_refused",
        now=now,
        inbound=inbound.id,
        reason=f"agent mail asking for {asked} kept as the agent's own mail",
        why_not=why,
    )
    if unproven:
        body = (
            f"A mail with your address as sender asked to open {asked}, but it carried no "
            f"trusted DKIM/SPF pass ({why}), so it became ticket #{ticket.number} in your own "
            "name and nobody else was written to. If you sent it, your mail server must sign "
            "it (DKIM) or the desk's MX must vouch for it."
        )
    else:
        body = (
            f"Your mail asked to open {asked}, but {why}. It became ticket #{ticket.number} "
            "in your own name and nobody else was written to."
        )
    sent = queue_notice(
        app,
        session,
        ticket,
        msg.from_addr,
        "your mail opened no ticket for someone else",
        body,
        now,
        kind="forgery_notice" if unproven else "notice",
        per_hour=app.settings.notify.forgery_notices_per_agent_per_hour if unproven else None,
    )
    reason = f"{result.reason}; kept as the agent's own mail: {why}".lstrip("; ")
    queued = result.queued_mail + int(sent)
    return IngestResult(result.outcome, result.ticket_number, reason, queued)


def _placed(app: App, written: datetime | None) -> datetime | None:
    """A forward's date without a zone is the writer's local time: the desk's is the best
    guess there is."""
    if written is None or written.tzinfo is not None:
        return written
    return written.replace(tzinfo=ZoneInfo(app.settings.business_hours.timezone))
