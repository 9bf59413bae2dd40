"""Conditions compiled once at load time into small objects that say why they hit or missed.

Keywords match at the start of a word and ignore case, so ``down`` finds "downtime" but not
"sundown", and an admin's Russian stem ``недоступ`` finds "недоступен" and "недоступна";
``ё`` and ``е`` count as the same letter, as Russian writers use them interchangeably.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from parsers.model import InboundMessage
from rules.schema import FIELDS, FLAGS, Condition, Match

RE_FLAGS = re.IGNORECASE | re.UNICODE


def normalise(text: str) -> str:
    return text.replace("ё", "е").replace("Ё", "Е")


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
    """What conditions look at, normalised once per message."""

    msg: InboundMessage
    is_reply: bool
    language: str | None
    flags: dict[str, object] = field(default_factory=dict)
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    folded: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Case-folded fields: a plain substring test rules most keywords out before any regex."""
    explain: bool = False
    """Word every miss too (for the dry run); routing needs only the hits."""

    @classmethod
    def of(
        cls, msg: InboundMessage, context: Context, language: str | None, explain: bool = False
    ) -> Facts:
        values = {
            "subject": (msg.subject,),
            "body": (msg.new_text,),
            "full_body": (msg.text,),
            "from": (msg.from_addr,),
            "to": msg.to,
            "cc": msg.cc,
            "attachment": tuple(f"{a.filename} {a.content_type}" for a in msg.attachments),
            "source": (context.source,),
        }
        fields = {k: tuple(normalise(v) for v in vs) for k, vs in values.items()}
        flags = {
            "language": language,
            "kind": str(msg.kind),
            "is_reply": context.is_reply,
            "business_hours": context.business_hours,
            "known_customer": context.known_customer,
            "sender_is_agent": context.sender_is_agent,
        }
        folded = {k: tuple(v.casefold() for v in vs) for k, vs in fields.items()}
        return cls(msg, context.is_reply, language, flags, fields, folded, explain)


class Check(Protocol):
    def check(self, facts: Facts) -> tuple[bool, str]: ...


def _fold(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(normalise(w.strip()).casefold() for w in words)


def _words(words: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(normalise(w.strip())) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})", RE_FLAGS)


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
            return cls(
                "any",
                (_words(match.any),),
                label=f"any of {match.any}",
                needles=(_fold(match.any),),
            )
        if match.all is not None:
            return cls(
                "all",
                tuple(_words([w]) for w in match.all),
                label=f"all of {match.all}",
                needles=tuple(_fold([w]) for w in match.all),
            )
        if match.regex is not None:
            return cls(
                "regex", (re.compile(match.regex, RE_FLAGS),), label=f"regex {match.regex!r}"
            )
        if match.exact is not None:
            return cls("exact", value=normalise(match.exact).casefold())
        return cls("domain", value=(match.domain or "").lower().lstrip("@."))

    def find(self, values: Sequence[str], folded: Sequence[str]) -> str | None:
        if self.kind == "exact":
            return next((v for v in values if v.strip().casefold() == self.value), None)
        if self.kind == "domain":
            for v in values:
                domain = v.rpartition("@")[2].lower()
                if domain == self.value or domain.endswith("." + self.value):
                    return v
            return None
        found = []
        for index, pattern in enumerate(self.patterns):
            if self.needles and not any(n in f for n in self.needles[index] for f in folded):
                return None
            hit = next((m for v in values if (m := pattern.search(v))), None)
            if hit is None:
                return None
            found.append(hit.group(0))
        return ", ".join(repr(f) for f in found)

    def describe(self) -> str:
        return self.label or f"{self.kind} {self.value!r}"


@dataclass(frozen=True)
class FieldCheck:
    name: str
    matcher: Matcher
    header: str = ""

    def check(self, facts: Facts) -> tuple[bool, str]:
        if self.header:
            values: tuple[str, ...] = (normalise(facts.msg.headers.get(self.header, "")),)
            folded, label = tuple(v.casefold() for v in values), f"header {self.header}"
        else:
            values, folded, label = facts.fields[self.name], facts.folded[self.name], self.name
        found = self.matcher.find(values, folded)
        if found is None:
            return False, f"{label}: no {self.matcher.describe()}" if facts.explain else ""
        return True, f"{label} matched {found}"


@dataclass(frozen=True)
class ValueCheck:
    name: str
    wanted: object

    def check(self, facts: Facts) -> tuple[bool, str]:
        actual = facts.flags[self.name]
        return actual == self.wanted, f"{self.name} is {actual!r} (wanted {self.wanted!r})"


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Check, ...]

    def check(self, facts: Facts) -> tuple[bool, str]:
        reasons = []
        for part in self.parts:
            hit, reason = part.check(facts)
            if not hit:
                return False, reason
            reasons.append(reason)
        return True, " and ".join(reasons)


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Check, ...]

    def check(self, facts: Facts) -> tuple[bool, str]:
        reasons = []
        for part in self.parts:
            hit, reason = part.check(facts)
            if hit:
                return True, reason
            reasons.append(reason)
        return False, "none of: " + "; ".join(reasons)


@dataclass(frozen=True)
class Not:
    part: Check

    def check(self, facts: Facts) -> tuple[bool, str]:
        hit, reason = self.part.check(facts)
        return not hit, f"not ({reason})"


def compile_condition(cond: Condition) -> Check:
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
