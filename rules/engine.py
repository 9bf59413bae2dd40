"""One interpreter walks the rules in order and records why each one hit or missed."""

from __future__ import annotations

from dataclasses import dataclass, field

from postdesk.parsers.model import InboundMessage
from postdesk.rules.language import detect
from postdesk.rules.matchers import Context, Facts
from postdesk.rules.model import RuleSet
from postdesk.rules.schema import NO_REPLY, Link

NEW = Context()


@dataclass(frozen=True)
class Step:
    """One rule in the walk; a miss has reasons only when evaluated with ``explain=True``."""

    name: str
    hit: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Changes:
    """What the matching rules themselves set, without the defaults: a rule on a reply
    changes only these."""

    queue: str | None = None
    priority: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    queue: str
    priority: str
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    assign: str | None = None
    """round_robin or least_loaded among the queue's members, when no assignee is named."""
    watchers: tuple[str, ...] = ()
    autoreply: str | None = None
    """The acknowledgement template; None means no acknowledgement (see autoreply_reason)."""
    autoreply_reason: str = ""
    language: str | None = None
    spam: bool = False
    matched: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    changes: Changes = field(default_factory=Changes)
    trace: tuple[Step, ...] = field(default=(), compare=False)


def evaluate(
    ruleset: RuleSet, msg: InboundMessage, context: Context = NEW, *, explain: bool = False
) -> Decision:
    """Later hits override scalar actions of earlier ones; tags, CCs and links accumulate.

    On a reply only the rules marked ``applies_to: replies`` or ``all`` run.
    """
    defaults = ruleset.defaults
    language = detect(f"{msg.subject}\n{msg.new_text}")
    facts = Facts.of(msg, context, language, explain)
    wanted = ("replies", "all") if context.is_reply else ("new", "all")
    queue, priority, assignee = defaults.queue, defaults.priority, None
    strategy: str | None = None
    watchers: list[str] = []
    autoreply: str | None = defaults.autoreply
    autoreply_reason = "" if autoreply else "defaults: autoreply: none"
    tags = list(defaults.tags)
    links: list[Link] = []
    matched: list[str] = []
    trace: list[Step] = []
    spam = False
    changes = Changes()
    for rule in ruleset.rules:
        if rule.applies_to not in wanted:
            continue
        hit, reasons = rule.condition.check(facts) if rule.condition else (True, ("always",))
        trace.append(Step(rule.name, hit, reasons))
        if not hit:
            continue
        matched.append(rule.name)
        then = rule.actions
        queue = then.queue or queue
        priority = then.priority or priority
        assignee = then.assignee or assignee
        strategy = then.assign or strategy
        watchers.extend(a for a in then.cc if a not in watchers)
        if then.autoreply == NO_REPLY:
            autoreply, autoreply_reason = None, f"rule {rule.name!r}: autoreply: none"
        elif then.autoreply:
            autoreply, autoreply_reason = then.autoreply, ""
        tags.extend(t for t in then.tags if t not in tags)
        changes = Changes(
            then.queue or changes.queue,
            then.priority or changes.priority,
            then.assignee or changes.assignee,
            (*changes.tags, *(t for t in then.tags if t not in changes.tags)),
        )
        links.extend(link for link in then.links if link not in links)
        spam = spam or then.spam
        language = then.language or language
        if rule.stop:
            break
    return Decision(
        queue=queue,
        priority=priority,
        tags=tuple(tags),
        assignee=assignee,
        assign=None if assignee else strategy,
        watchers=tuple(watchers),
        autoreply=autoreply,
        autoreply_reason=autoreply_reason,
        language=language,
        spam=spam,
        matched=tuple(matched),
        links=tuple(links),
        changes=changes,
        trace=tuple(trace),
    )
