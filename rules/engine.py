"""One interpreter walks the rules in order and records why each one hit or missed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from parsers.model import InboundMessage
from rules.language import detect
from rules.matchers import Facts
from rules.model import RuleSet
from rules.schema import Link

NO_REPLY = "none"


@dataclass(frozen=True)
class Step:
    rule: str
    hit: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    queue: str
    priority: str
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    autoreply: str | None = None
    """The acknowledgement template; None means no acknowledgement (see autoreply_reason)."""
    autoreply_reason: str = ""
    language: str | None = None
    spam: bool = False
    matched: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    trace: tuple[Step, ...] = field(default=(), compare=False)


def evaluate(
    ruleset: RuleSet,
    msg: InboundMessage,
    *,
    now: datetime | None = None,
    is_reply: bool = False,
) -> Decision:
    """Later hits override scalar actions of earlier ones; tags and links accumulate.

    ``now`` is accepted for time conditions (business hours), which arrive with the calendar.
    """
    defaults = ruleset.defaults
    language = detect(f"{msg.subject}\n{msg.new_text}")
    facts = Facts.of(msg, is_reply=is_reply, language=language)
    queue, priority, assignee = defaults.queue, defaults.priority, None
    autoreply: str | None = defaults.autoreply
    autoreply_reason = "" if autoreply else "no acknowledgement by default (defaults.autoreply)"
    tags = list(defaults.tags)
    links: list[Link] = []
    matched: list[str] = []
    trace: list[Step] = []
    spam = False
    for rule in ruleset.rules:
        hit, reason = rule.condition.check(facts) if rule.condition else (True, "always")
        trace.append(Step(rule.name, hit, reason))
        if not hit:
            continue
        matched.append(rule.name)
        then = rule.actions
        queue = then.queue or queue
        priority = then.priority or priority
        assignee = then.assignee or assignee
        if then.autoreply == NO_REPLY:
            autoreply, autoreply_reason = None, f"rule {rule.name!r}: autoreply: none"
        elif then.autoreply:
            autoreply, autoreply_reason = then.autoreply, ""
        tags.extend(t for t in then.tags if t not in tags)
        links.extend(link for link in then.links if link not in links)
        spam = spam or then.spam
        if rule.stop:
            break
    return Decision(
        queue=queue,
        priority=priority,
        tags=tuple(tags),
        assignee=assignee,
        autoreply=autoreply,
        autoreply_reason=autoreply_reason,
        language=language,
        spam=spam,
        matched=tuple(matched),
        links=tuple(links),
        trace=tuple(trace),
    )
