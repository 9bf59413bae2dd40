"""The shape of rules.yaml, validated by pydantic so every mistake is reported with its key,
and by config.loader with its line."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Priority = Literal["low", "normal", "high", "urgent"]
MessageKind = Literal["customer", "agent", "survey_answer", "bounce", "autoreply", "bulk", "loop"]
"""The values of parsers.model.Kind."""
MATCH_KINDS = ("any", "all", "regex", "exact", "domain")
NO_REPLY = "none"
"""``autoreply: none`` suppresses the acknowledgement."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _one_of(values: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    given = [k for k in keys if values.get(k) is not None]
    if len(given) != 1:
        found = ", ".join(given) or "none"
        raise ValueError(f"{what} needs exactly one of {', '.join(keys)} (found: {found})")


class Match(Strict):
    """How a field is matched; a plain string or list is short for ``any``."""

    any: tuple[str, ...] | None = None
    all: tuple[str, ...] | None = None
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
            if words is not None and not (words and all(w.strip() for w in words)):
                raise ValueError("give at least one keyword, none of them empty")
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
    all_: tuple[Condition, ...] | None = Field(default=None, alias="all")
    any_: tuple[Condition, ...] | None = Field(default=None, alias="any")
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
    kind: MessageKind | None = None
    is_reply: bool | None = None
    business_hours: bool | None = None
    known_customer: bool | None = None
    """The sender has written to us before (has an earlier ticket)."""
    sender_is_agent: bool | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> Condition:
        _one_of(self.model_dump(by_alias=True), (*COMBINATORS, *LEAVES), "a condition")
        if self.all_ == () or self.any_ == ():
            raise ValueError("`all` and `any` need at least one condition")
        return self


class Link(Strict):
    title: str
    url: str = Field(pattern=r"^https?://\S+$")


class Actions(Strict):
    queue: str | None = None
    priority: Priority | None = None
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    assign: Literal["round_robin", "least_loaded"] | None = None
    """Pick the assignee among the queue's members instead of naming one."""
    cc: tuple[str, ...] = ()
    """Watchers added to the ticket as participants."""
    autoreply: str | None = None
    """A template name, or ``none`` for no acknowledgement."""
    spam: bool = False
    links: tuple[Link, ...] = ()
    language: Literal["en", "ru"] | None = None
    """The language of mail to the customer, instead of the one detected from their text."""

    @field_validator("assignee")
    @classmethod
    def lower_assignee(cls, value: str | None) -> str | None:
        """Addresses are compared lower-case everywhere, as the parser stores them."""
        return value.lower() if value else value

    @field_validator("cc")
    @classmethod
    def lower_cc(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.lower() for a in value))


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
    """``none`` (or null) here means no acknowledgement unless a rule names a template."""
    tags: tuple[str, ...] = ()

    @field_validator("autoreply")
    @classmethod
    def none_is_no_reply(cls, value: str | None) -> str | None:
        return None if value == NO_REPLY else value


class RulesFile(Strict):
    defaults: Defaults = Defaults()
    rules: tuple[RuleSpec, ...] = ()
