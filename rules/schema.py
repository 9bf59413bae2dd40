"""The shape of rules.yaml, validated by pydantic so every mistake is reported with its key,
and by config.loader with its line."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Priority = Literal["low", "normal", "high", "urgent"]
MATCH_KINDS = ("any", "all", "regex", "exact", "domain")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _one_of(values: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    given = [k for k in keys if values.get(k) is not None]
    if len(given) != 1:
        found = ", ".join(given) or "none"
        raise ValueError(f"{what} needs exactly one of {', '.join(keys)} (found: {found})")


class Match(Strict):
    """How a field is matched; a plain string or list is short for ``any``."""

    any: list[str] | None = None
    all: list[str] | None = None
    regex: str | None = None
    exact: str | None = None
    domain: str | None = None

    @model_validator(mode="before")
    @classmethod
    def shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"any": [value]}
        if isinstance(value, list):
            return {"any": value}
        return value

    @model_validator(mode="after")
    def exactly_one(self) -> Match:
        _one_of(self.model_dump(), MATCH_KINDS, "a match")
        for words in (self.any, self.all):
            if words is not None and not all(w.strip() for w in words):
                raise ValueError("keywords must not be empty")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"bad regular expression {self.regex!r}: {exc}") from exc
        return self


class HeaderMatch(Match):
    name: str

    @model_validator(mode="before")
    @classmethod
    def shorthand(cls, value: Any) -> Any:
        return value


FIELDS = ("subject", "body", "full_body", "from", "to", "cc", "attachment", "source")
FLAGS = ("language", "kind", "is_reply", "business_hours", "known_customer", "sender_is_agent")
LEAVES = (*FIELDS, "header", *FLAGS)
COMBINATORS = ("all", "any", "not")


class Condition(Strict):
    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")
    subject: Match | None = None
    body: Match | None = None
    full_body: Match | None = None
    from_: Match | None = Field(default=None, alias="from")
    to: Match | None = None
    cc: Match | None = None
    attachment: Match | None = None
    source: Match | None = None
    """Where the mail came in: ``smtp``, ``lmtp``, ``pipe`` or ``imap:<mailbox name>``."""
    header: HeaderMatch | None = None
    language: Literal["en", "ru"] | None = None
    kind: Literal["customer", "agent", "bounce", "autoreply", "bulk", "loop"] | None = None
    is_reply: bool | None = None
    business_hours: bool | None = None
    known_customer: bool | None = None
    """The sender has written to us before (has an earlier ticket)."""
    sender_is_agent: bool | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> Condition:
        _one_of(self.model_dump(by_alias=True), (*COMBINATORS, *LEAVES), "a condition")
        return self


class Link(Strict):
    title: str
    url: str = Field(pattern=r"^https?://\S+$")


class Actions(Strict):
    queue: str | None = None
    priority: Priority | None = None
    tags: list[str] = []
    assignee: str | None = None
    assign: Literal["round_robin", "least_loaded"] | None = None
    """Pick the assignee among the queue's members instead of naming one."""
    cc: list[str] = []
    """Watchers added to the ticket as participants."""
    autoreply: str | None = None
    """A template name, or ``none`` for no acknowledgement."""
    spam: bool = False
    links: list[Link] = []
    language: Literal["en", "ru"] | None = None
    """The language of mail to the customer, instead of the one detected from their text."""


class RuleSpec(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    if_: Condition | None = Field(default=None, alias="if")
    then: Actions
    stop: bool = False
    applies_to: Literal["new", "replies", "all"] = "new"
    """Rules run on new tickets; ``replies`` or ``all`` also run them on customer replies."""


class Defaults(Strict):
    queue: str = "general"
    priority: Priority = "normal"
    autoreply: str | None = "ack"
    tags: list[str] = []


class RulesFile(Strict):
    defaults: Defaults = Defaults()
    rules: list[RuleSpec] = []

    @model_validator(mode="after")
    def unique_names(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self
