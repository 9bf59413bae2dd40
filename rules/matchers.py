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
from rules.schema import Condition, Match

FLAGS = re.IGNORECASE | re.UNICODE


def normalise(text: str) -> str:
    return text.replace("ё", "е").replace("Ё", "Е")


@dataclass(frozen=True)
class Facts:
    """What conditions look at, normalised once per message."""

    msg: InboundMessage
    is_reply: bool
    language: str | None
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, msg: InboundMessage, *, is_reply: bool, language: str | None) -> Facts:
        values = {
            "subject": (msg.subject,),
            "body": (msg.new_text,),
            "full_body": (msg.text,),
            "from": (msg.from_addr,),
            "to": msg.to,
            "cc": msg.cc,
            "attachment": tuple(f"{a.filename} {a.content_type}" for a in msg.attachments),
        }
        fields = {k: tuple(normalise(v) for v in vs) for k, vs in values.items()}
        return cls(msg, is_reply, language, fields)


class Check(Protocol):
    def check(self, facts: Facts) -> tuple[bool, str]: ...


def _words(words: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(normalise(w.strip())) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})", FLAGS)


@dataclass(frozen=True)
class Matcher:
    """One match kind applied to the values of a field; returns what it found."""

    kind: str
    patterns: tuple[re.Pattern[str], ...] = ()
    value: str = ""
    label: str = ""

    @classmethod
    def of(cls, match: Match) -> Matcher:
        if match.any is not None:
            return cls("any", (_words(match.any),), label=f"any of {match.any}")
        if match.all is not None:
            return cls("all", tuple(_words([w]) for w in match.all), label=f"all of {match.all}")
        if match.regex is not None:
            return cls("regex", (re.compile(match.regex, FLAGS),), label=f"regex {match.regex!r}")
        if match.exact is not None:
            return cls("exact", value=normalise(match.exact).casefold())
        return cls("domain", value=(match.domain or "").lower().lstrip("@."))

    def find(self, values: Sequence[str]) -> str | None:
        if self.kind == "exact":
            return next((v for v in values if v.strip().casefold() == self.value), None)
        if self.kind == "domain":
            for v in values:
                domain = v.rpartition("@")[2].lower()
                if domain == self.value or domain.endswith("." + self.value):
                    return v
            return None
        found = []
        for pattern in self.patterns:
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
            label = f"header {self.header}"
        else:
            values, label = facts.fields[self.name], self.name
        found = self.matcher.find(values)
        if found is None:
            return False, f"{label}: no {self.matcher.describe()}"
        return True, f"{label} matched {found}"


@dataclass(frozen=True)
class ValueCheck:
    name: str
    wanted: object

    def check(self, facts: Facts) -> tuple[bool, str]:
        actual = {
            "language": facts.language,
            "kind": str(facts.msg.kind),
            "is_reply": facts.is_reply,
        }[self.name]
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
    for name in ("subject", "body", "full_body", "from", "to", "cc", "attachment"):
        match = getattr(cond, "from_" if name == "from" else name)
        if match is not None:
            return FieldCheck(name, Matcher.of(match))
    name, wanted = next(
        (n, getattr(cond, n))
        for n in ("language", "kind", "is_reply")
        if getattr(cond, n) is not None
    )
    return ValueCheck(name, wanted)
