"""Rules as loaded: validated specs with their conditions compiled, swapped in as one object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from postdesk.rules.matchers import Check
from postdesk.rules.schema import FLAGS, Actions, Defaults


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    condition: Check | None
    """None: the rule always applies."""
    actions: Actions
    stop: bool
    applies_to: str = "new"


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: Path | None
    """None: the configuration names no rules file."""
    defaults: Defaults
    flags: frozenset[str] = frozenset(FLAGS)
    """The context flags some condition looks at: the daemon asks the database only for those."""
