"""Conditions compiled once at load time into small objects that say why they hit or missed.

Keywords match at the start of a word and ignore case, so ``down`` finds "downtime" but not
"sundown", and an admin's Russian stem ``недоступ`` finds "недоступен" and "недоступна";
``ё`` and ``е`` count as the same letter, as Russian writers use them interchangeably.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from postdesk.parsers.model import InboundMessage
from postdesk.rules.schema import FIELDS, FLAGS, Condition, Match

Reasons = tuple[str, ...]


def fold(text: str) -> str:
    """Case-folded, with ``ё`` as ``е``: the form keywords and ``exact`` compare in."""
    return text.casefold().replace("ё", "е")


@dataclass(frozen=True)
class Context:
    """What the rules may know beyond the message itself; the daemon fills it in."""

    is_reply: bool = False
    source: str = ""
    business_hours: bool | None = None
    known_customer: bool = False
    sender_is_agent: bool = False


@dataclass(frozen=True)
class Facts:
    """What conditions look at, gathered and folded once per message."""

    msg: InboundMessage
    flags: dict[str, object]
    fields: dict[str, tuple[str, ...]]
    folded: dict[str, tuple[str, ...]]
    """Folded fields: keywords search these, after a plain substring test rules most out."""
    explain: bool = False
    """Word every miss too (for the dry run); routing needs only the hits."""

    @classmethod
    def of(
        cls, msg: InboundMessage, context: Context, language: str | None, explain: bool = False
    ) -> Facts:
        fields = {
            "subject": (msg.subject,),
            "body": (msg.new_text,),
            "full_body": (msg.text,),
            "from": (msg.from_addr,),
            "to": msg.to,
            "cc": msg.cc,
            "attachment": tuple(f"{a.filename} {a.content_type}" for a in msg.attachments),
            "source": (context.source,),
        }
        flags: dict[str, object] = {
            "language": language,
            "kind": str(msg.kind),
            "is_reply": context.is_reply,
            "business_hours": context.business_hours,
            "known_customer": context.known_customer,
            "sender_is_agent": context.sender_is_agent,
        }
        folded = {k: tuple(fold(v) for v in vs) for k, vs in fields.items()}
        return cls(msg, flags, fields, folded, explain)


class Check(Protocol):
    def check(self, facts: Facts) -> tuple[bool, Reasons]: ...


def _fold(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(fold(w.strip()) for w in words)


def _words(words: Sequence[str]) -> re.Pattern[str]:
    """Folded keywords at a word start; the end is open, so a keyword is also a prefix."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})")


@dataclass(frozen=True)
class Matcher:
    """One match kind applied to the values of a field; returns what it found."""

    kind: str
    patterns: tuple[re.Pattern[str], ...] = ()
    value: str = ""
    label: str = ""
    needles: tuple[tuple[str, ...], ...] = ()
    """Per pattern, the folded keywords one of which must occur for it to match at all."""

    @classmethod
    def of(cls, match: Match) -> Matcher:
        if match.any is not None:
            words = _fold(match.any)
            return cls("any", (_words(words),), label=f"any of {list(match.any)}", needles=(words,))
        if match.all is not None:
            words = _fold(match.all)
            return cls(
                "all",
                tuple(_words([w]) for w in words),
                label=f"all of {list(match.all)}",
                needles=tuple((w,) for w in words),
            )
        if match.regex is not None:
            pattern = re.compile(match.regex, re.IGNORECASE)
            return cls("regex", (pattern,), label=f"regex {match.regex!r}")
        if match.exact is not None:
            return cls("exact", value=fold(match.exact.strip()))
        return cls("domain", value=(match.domain or "").lower().lstrip("@."))

    def find(self, values: Sequence[str], folded: Sequence[str]) -> str | None:
        """What matched, quoted for the trace; None when the field does not match."""
        if self.kind == "exact":
            pairs = zip(values, folded, strict=True)
            return next((repr(v) for v, f in pairs if f.strip() == self.value), None)
        if self.kind == "domain":
            for v in values:
                domain = v.rpartition("@")[2].lower()
                if domain == self.value or domain.endswith("." + self.value):
                    return repr(v)
            return None
        # Admins' regexes see the text as written; keywords see it folded.
        searched = values if self.kind == "regex" else folded
        found = []
        for index, pattern in enumerate(self.patterns):
            if self.needles and not any(n in f for n in self.needles[index] for f in folded):
                return None
            hit = next((m for v in searched if (m := pattern.search(v))), None)
            if hit is None:
                return None
            found.append(repr(hit.group(0)))
        return ", ".join(found)

    def describe(self) -> str:
        return self.label or f"{self.kind} {self.value!r}"


@dataclass(frozen=True)
class FieldCheck:
    name: str
    matcher: Matcher
    header: str = ""

    def check(self, facts: Facts) -> tuple[bool, Reasons]:
        if self.header:
            values: tuple[str, ...] = (facts.msg.headers.get(self.header, ""),)
            folded, label = tuple(fold(v) for v in values), f"header {self.header}"
        else:
            values, folded, label = facts.fields[self.name], facts.folded[self.name], self.name
        found = self.matcher.find(values, folded)
        if found is None:
            return False, (f"{label}: no {self.matcher.describe()}",) if facts.explain else ()
        return True, (f"{label} matched {found}",)


@dataclass(frozen=True)
class ValueCheck:
    name: str
    wanted: object

    def check(self, facts: Facts) -> tuple[bool, Reasons]:
        actual = facts.flags[self.name]
        return actual == self.wanted, (f"{self.name} is {actual!r} (wanted {self.wanted!r})",)


@dataclass(frozen=True)
class AllOf:
    """Hits with the reasons of every part; misses with the first part that failed."""

    parts: tuple[Check, ...]

    def check(self, facts: Facts) -> tuple[bool, Reasons]:
        reasons: list[str] = []
        for part in self.parts:
            hit, why = part.check(facts)
            if not hit:
                return False, why
            reasons.extend(why)
        return True, tuple(reasons)


@dataclass(frozen=True)
class AnyOf:
    """Hits with the first part that matched; misses with why each part failed."""

    parts: tuple[Check, ...]

    def check(self, facts: Facts) -> tuple[bool, Reasons]:
        reasons: list[str] = []
        for part in self.parts:
            hit, why = part.check(facts)
            if hit:
                return True, why
            reasons.extend(why)
        return False, tuple(reasons)


@dataclass(frozen=True)
class Not:
    part: Check

    def check(self, facts: Facts) -> tuple[bool, Reasons]:
        hit, why = self.part.check(facts)
        if hit:
            return False, tuple(f"not wanted: {r}" for r in why)
        return True, tuple(f"as wanted, {r}" for r in why) or (
            "the negated condition did not match",
        )


def compile_condition(cond: Condition) -> Check:
    """The validated condition tree as check objects, patterns compiled once."""
    if cond.all_ is not None:
        return AllOf(tuple(compile_condition(c) for c in cond.all_))
    if cond.any_ is not None:
        return AnyOf(tuple(compile_condition(c) for c in cond.any_))
    if cond.not_ is not None:
        return Not(compile_condition(cond.not_))
    if cond.header is not None:
        return FieldCheck("header", Matcher.of(cond.header), cond.header.name.lower())
    for name in FIELDS:
        match = getattr(cond, "from_" if name == "from" else name)
        if match is not None:
            return FieldCheck(name, Matcher.of(match))
    name, wanted = next((n, getattr(cond, n)) for n in FLAGS if getattr(cond, n) is not None)
    return ValueCheck(name, wanted)
