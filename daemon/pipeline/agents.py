"""Agents work the desk from their mail client: replies are relayed, commands applied.

Nothing from an agent's address is believed on its From alone. The proof is the agent's own
reply token (only ever mailed to that agent) or an Authentication-Results verdict written by
a server the admin trusts. Without it the mail is kept, nothing is executed or relayed, and
the real agent is told.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from postdesk.config.errors import ConfigError
from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.closing import Occasion, send_closing_notice, survey_due
from postdesk.daemon.outgoing.compose import queue_agent_notification, queue_notice, queue_relay
from postdesk.daemon.pipeline.authentication import Verdict, verdict
from postdesk.parsers.commands import KNOWN, without_commands
from postdesk.parsers.model import Attachment, Command, InboundMessage
from postdesk.parsers.references import verify_agent_token
from postdesk.store.lifecycle import COMMANDS
from postdesk.store.models import Ticket
from postdesk.store.tickets import (
    add_event,
    add_participants,
    load_ticket,
    record_inbound,
    surviving,
)

log = logging.getLogger("postdesk.agents")
PRIORITIES = ("low", "normal", "high", "urgent")
SURVEYED: dict[str, Occasion] = {"close": "agent_close", "resolve": "resolve"}
"""Agent commands whose closing notice may carry the survey (`survey.send_on`)."""
OPENING = ("to", "requester")
"""Commands that only a new mail to a support address obeys: they name whom it opens a
ticket for (daemon/pipeline/on_behalf.py)."""
Opened = Literal["", "forward", "to"]


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    surveyed: Ticket | None = None
    """A status command made the survey due on this ticket; it leaves after the answer
    that came with the command, so the customer reads the answer before rating it."""


def token_ticket(app: App, msg: InboundMessage) -> int | None:
    """The ticket that the sender's own agent token in a recipient address names."""
    for token in msg.agent_tokens:
        ticket_id = verify_agent_token(app.secret, token, msg.from_addr)
        if ticket_id is not None:
            return ticket_id
    return None


def proof(app: App, msg: InboundMessage, ticket: Ticket) -> Verdict:
    """How the sender proved to be the agent; an empty proof says why not."""
    if token_ticket(app, msg) == ticket.id:
        return Verdict("agent reply token")
    return verdict(msg.trace, msg.from_addr, app.settings.agent_auth)


def handle(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    inbound_id: int,
    now: datetime,
    opened: Opened = "",
) -> tuple[str, int, Ticket]:
    """Apply an agent's mail to its ticket; returns the outcome reason, the mails queued and
    the ticket the mail landed on. ``opened`` says that this mail just opened the ticket: by
    a forward, whose text is the agent's note, or by ``#to``, whose text is sent."""
    proven = proof(app, msg, ticket)
    ticket = surviving(session, ticket)
    if not proven.proof:
        reason, queued = _refuse_forgery(app, session, ticket, msg, proven.why_not, inbound_id, now)
        return reason, queued, ticket
    outcome = Outcome()
    unknown = [c for c in msg.commands if c.name not in KNOWN]
    if unknown:
        outcome.refused += [f"unknown command {c.line!r}" for c in unknown]
        outcome.refused.append("nothing was changed or sent; correct the command and resend")
        add_event(
            ticket,
            actor=msg.from_addr,
            type="agent_mail_refused",
            now=now,
            reason="unknown command",
            commands=[c.line for c in unknown],
        )
        return (
            "unknown command",
            _summary(app, session, ticket, msg.from_addr, outcome, now),
            ticket,
        )
    text = without_commands(msg.new_text, msg.commands).strip()
    note = opened == "forward" or any(c.name == "note" for c in msg.commands)
    if opened:
        outcome.done.append(f"ticket #{ticket.number} opened for {ticket.requester}")
    outcome.refused += [
        f"{c.line}: only a new mail to a support address opens a ticket"
        for c in msg.commands
        if c.name in OPENING and not opened
    ]
    status_given = False
    written_on = ticket  # the summary names it; after #merge the answer goes to the other
    for command in msg.commands:
        if command.name in OPENING:
            continue
        status_given |= command.name in COMMANDS
        _apply(app, session, ticket, msg.from_addr, command, outcome, now)
    ticket = surviving(session, ticket)
    text = _with_snippets(app, ticket, msg.commands, text, outcome)
    queued = 0
    if note and (text or opened != "forward"):
        queued += _note(app, session, ticket, msg, text, inbound_id, now)
        outcome.done.append("kept as an internal note")
    elif text and not note:
        name = _agent_name(app, msg.from_addr)
        queue_relay(app, session, ticket, msg.from_addr, name, text, _rows(msg), inbound_id, now)
        queued += 1
        outcome.done.append(f"answer sent to {ticket.requester}")
        ticket_state.answered(app, ticket, msg.from_addr, now, status_given=status_given)
    if outcome.surveyed is not None:
        send_closing_notice(app, session, outcome.surveyed, now, survey=True)
        queued += 1
        outcome.done.append(f"satisfaction survey sent to {outcome.surveyed.requester}")
    add_event(
        ticket,
        actor=msg.from_addr,
        type="agent_mail",
        now=now,
        proof=proven.proof,
        done=outcome.done,
        refused=outcome.refused,
        inbound=inbound_id,
    )
    queued += _summary(app, session, written_on, msg.from_addr, outcome, now)
    return "; ".join(outcome.done) or "no change", queued, ticket


def _apply(
    app: App,
    session: Session,
    ticket: Ticket,
    agent: str,
    command: Command,
    outcome: Outcome,
    now: datetime,
) -> None:
    name, arg = command.name, command.argument.strip()
    settings = app.settings
    if name in COMMANDS:
        before = ticket_state.move(app, ticket, COMMANDS[name], now)
        outcome.done.append(f"status {before} -> {ticket.status}")
        occasion = SURVEYED.get(name)
        if occasion and survey_due(app, session, ticket, occasion):
            outcome.surveyed = ticket
    elif name == "assign":
        target = _find_agent(app, arg or agent)
        if target is None:
            outcome.refused.append(f"#assign {arg}: no such agent")
            return
        ticket_state.assign(ticket, target, now)
        outcome.done.append(f"assigned to {target}")
        if target != agent and settings.notify.assignment:
            queue_agent_notification(app, session, ticket, target, "assigned to you", None, now)
    elif name == "priority":
        if arg.lower() not in PRIORITIES:
            outcome.refused.append(f"#priority {arg}: use one of {', '.join(PRIORITIES)}")
            return
        ticket_state.set_priority(app, ticket, arg.lower(), now)
        outcome.done.append(f"priority {ticket.priority}")
    elif name == "queue":
        if arg not in {q.name for q in settings.queues}:
            outcome.refused.append(f"#queue {arg}: no such queue")
            return
        before = ticket.queue
        if ticket_state.set_queue(app, ticket, arg, now):
            add_event(ticket, actor=agent, type="escalated", now=now, queue=[before, arg])
        outcome.done.append(f"moved to queue {arg}")
        customer = next(
            (m for m in reversed(ticket.messages) if m.direction == "in" and m.kind == "customer"),
            None,
        )
        for member in settings.members_of(arg):
            if member != agent:
                queue_agent_notification(
                    app, session, ticket, member, "moved to your queue", customer, now
                )
    elif name in ("tag", "untag"):
        if not arg:
            outcome.refused.append(f"#{name}: which tag?")
            return
        tags = set(ticket.tags)
        ticket_state.set_tags(ticket, tags | {arg} if name == "tag" else tags - {arg}, now)
        outcome.done.append(f"{name}ged {arg}")
    elif name == "cc":
        if "@" not in arg or " " in arg:
            outcome.refused.append(f"#cc {arg}: not an address")
            return
        added = add_participants(session, ticket, [(arg, "cc")], app.own_addresses)
        ticket_state.touch(ticket, now)
        outcome.done.append(f"{arg} copied from now on" if added else f"{arg} was already copied")
    elif name == "merge":
        _merge(app, session, ticket, agent, arg, outcome, now)


def _merge(
    app: App,
    session: Session,
    ticket: Ticket,
    agent: str,
    arg: str,
    outcome: Outcome,
    now: datetime,
) -> None:
    """`#merge N`: this ticket is a duplicate of #N. Nobody outside the team is told."""
    into = load_ticket(session, arg) if arg else None
    if into is not None:
        into = surviving(session, into)
    if into is None or into.id == ticket.id:
        outcome.refused.append(f"#merge {arg}: which other ticket? (#merge <number>)")
        return
    ticket_state.merge(app, session, ticket, into, now)
    add_event(ticket, actor=agent, type="merged_into", now=now, number=into.number)
    add_event(into, actor=agent, type="merged", now=now, number=ticket.number)
    outcome.done.append(f"merged into #{into.number}, which now holds its mail and people")


def _with_snippets(
    app: App, ticket: Ticket, commands: tuple[Command, ...], text: str, outcome: Outcome
) -> str:
    parts = [text] if text else []
    for command in commands:
        if command.name != "reply":
            continue
        try:
            parts.append(
                app.playbook.templates.snippet(
                    command.argument.strip(), ticket.language, {"ticket": {"number": ticket.number}}
                )
            )
            outcome.done.append(f"canned answer {command.argument.strip()!r} inserted")
        except ConfigError as exc:
            outcome.refused.append(f"#reply {command.argument}: {exc}")
    return "\n\n".join(parts)


def _note(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    text: str,
    inbound_id: int,
    now: datetime,
) -> int:
    note = record_inbound(
        session, ticket, msg, inbound_id=inbound_id, kind="note", now=now, body=text
    )
    colleagues = {ticket.assignee} if ticket.assignee else set()
    colleagues |= {m.from_addr for m in ticket.messages if m.kind == "note"}
    colleagues |= {e.actor for e in ticket.events if e.type == "agent_mail"}
    colleagues = {c for c in colleagues if c and c in app.settings.agent_addresses} - {
        msg.from_addr
    }
    return sum(
        queue_agent_notification(app, session, ticket, colleague, "internal note", note, now)
        for colleague in sorted(colleagues)
    )


def _refuse_forgery(
    app: App,
    session: Session,
    ticket: Ticket,
    msg: InboundMessage,
    why_not: str,
    inbound_id: int,
    now: datetime,
) -> tuple[str, int]:
    """Record the forged mail and warn the real agent, at most
    `notify.forgery_notices_per_agent_per_hour` times: a forger must not flood the agent."""
    log.warning(
        "unproven mail from an agent address",
        extra={
            "ticket": ticket.number,
            "from": msg.from_addr,
            "message_id": msg.message_id,
            "why_not": why_not,
        },
    )
    add_event(
        ticket,
        actor=msg.from_addr,
        type="security",
        now=now,
        inbound=inbound_id,
        reason="agent address without proof: nothing executed or relayed",
        why_not=why_not,
    )
    warned = queue_notice(
        app,
        session,
        ticket,
        msg.from_addr,
        "mail in your name was not accepted",
        f"A mail with your address as sender reached ticket #{ticket.number} without your "
        "reply token or a trusted DKIM/SPF pass, so its commands were not executed and its "
        "text was not sent to the customer. If you sent it, answer from the notification "
        "postdesk sent you (its Reply-To carries your token).",
        now,
        kind="forgery_notice",
        per_hour=app.settings.notify.forgery_notices_per_agent_per_hour,
    )
    return "unproven agent mail: refused", int(warned)


def _summary(
    app: App, session: Session, ticket: Ticket, agent: str, outcome: Outcome, now: datetime
) -> int:
    lines = [f"Ticket #{ticket.number} is now {ticket.status}."]
    lines += [f"done: {d}" for d in outcome.done]
    lines += [f"REFUSED: {r}" for r in outcome.refused]
    return int(
        queue_notice(app, session, ticket, agent, "your mail was applied", "\n".join(lines), now)
    )


def _agent_name(app: App, address: str) -> str:
    return next((a.name for a in app.settings.agents if a.email.lower() == address), "")


def _find_agent(app: App, name: str) -> str | None:
    """An agent by address, local part or name, as people type them."""
    wanted = name.lower().strip()
    for agent in app.settings.agents:
        email = agent.email.lower()
        if wanted in (email, email.partition("@")[0], agent.name.lower()):
            return email
    return None


def _rows(msg: InboundMessage) -> list[Attachment]:
    """The agent's own attachments; inline images of a signature stay behind."""
    return [a for a in msg.attachments if not a.inline]
