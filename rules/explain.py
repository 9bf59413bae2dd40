"""The dry run: what the rules decided for one message, and why, rule by rule."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postdesk.config.errors import BadData
from postdesk.parsers import parse
from postdesk.parsers.model import InboundMessage, ParseContext
from postdesk.rules.engine import Decision, evaluate
from postdesk.rules.model import RuleSet

COMPARED = ("queue", "priority", "tags", "assignee", "assign", "watchers", "autoreply", "spam")


def explain_json(msg: InboundMessage, decision: Decision) -> dict[str, Any]:
    """The dry run for scripts: plain JSON types only, the new text cut to 2000 characters."""
    return {
        "message": {
            "from": msg.from_addr,
            "to": list(msg.to),
            "cc": list(msg.cc),
            "subject": msg.subject,
            "new_text": msg.new_text[:2000],
            "attachments": [f"{a.filename} ({a.content_type})" for a in msg.attachments],
            "ticket_reference": msg.ticket_number,
            "kind": str(msg.kind),
            "kind_reason": msg.kind_reason,
            "message_id": msg.message_id,
        },
        "decision": {
            "queue": decision.queue,
            "priority": decision.priority,
            "tags": list(decision.tags),
            "assignee": decision.assignee,
            "assign": decision.assign,
            "watchers": list(decision.watchers),
            "autoreply": decision.autoreply,
            "autoreply_reason": decision.autoreply_reason,
            "language": decision.language,
            "spam": decision.spam,
            "links": [link.model_dump() for link in decision.links],
            "matched": list(decision.matched),
        },
        "trace": [
            {"rule": s.name, "hit": s.hit, "reasons": list(s.reasons)} for s in decision.trace
        ],
    }


def explain(msg: InboundMessage, decision: Decision) -> str:
    """The dry run for an admin: the message as the rules saw it, each rule, the outcome."""
    excerpt = " ".join(msg.new_text.split())[:200]
    lines = [
        f"message: {msg.subject!r} from {msg.from_addr or '(no sender)'}",
        f"to: {', '.join(msg.to) or '-'}; cc: {', '.join(msg.cc) or '-'}",
        f"attachments: {', '.join(a.filename for a in msg.attachments) or '-'}",
        f"new text: {excerpt!r}",
        f"kind: {msg.kind}" + (f" ({msg.kind_reason})" if msg.kind_reason else ""),
        f"language: {decision.language or 'unknown'}",
        "",
        "rules:",
    ]
    for step in decision.trace:
        lines.append(f"  {'HIT ' if step.hit else 'miss'} {step.name}")
        lines += [f"         {reason}" for reason in step.reasons]
    if not decision.trace:
        lines.append("  (no rules)")
    reply = decision.autoreply or f"none ({decision.autoreply_reason})"
    lines += [
        "",
        "decision:",
        f"  queue: {decision.queue}",
        f"  priority: {decision.priority}",
        f"  tags: {', '.join(decision.tags) or '-'}",
        f"  assignee: {decision.assignee or _strategy(decision.assign)}",
        f"  watchers: {', '.join(decision.watchers) or '-'}",
        f"  autoreply: {reply}",
    ]
    if decision.spam:
        lines.append("  spam: yes (quarantined, no ticket)")
    lines += [f"  link: {link.title} <{link.url}>" for link in decision.links]
    return "\n".join(lines)


def _strategy(assign: str | None) -> str:
    return f"- ({assign} among the queue's members)" if assign else "-"


def diff(old: Decision, new: Decision) -> dict[str, tuple[Any, Any]]:
    """The routing fields that differ between two decisions for the same message."""
    return {
        name: (getattr(old, name), getattr(new, name))
        for name in COMPARED
        if getattr(old, name) != getattr(new, name)
    }


@dataclass(frozen=True)
class Replayed:
    """One saved message under the old and the new rules: what changed, or why it is no
    ticket at all."""

    path: Path
    changes: dict[str, tuple[Any, Any]]
    refused: str = ""


def replay(
    paths: Iterable[Path], old: RuleSet, new: RuleSet, ctx: ParseContext
) -> Iterator[Replayed]:
    for path in paths:
        try:
            msg = parse(path.read_bytes(), ctx)
        except BadData as exc:
            yield Replayed(path, {}, str(exc))
            continue
        yield Replayed(path, diff(evaluate(old, msg), evaluate(new, msg)))
