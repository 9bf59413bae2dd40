"""rules.yaml to a RuleSet: all checks pass or nothing is returned, so a broken file never
replaces the rules in force."""

from __future__ import annotations

from pathlib import Path

import yaml

from postdesk.config.errors import ConfigError
from postdesk.config.loader import line_of, load_yaml, validate_yaml
from postdesk.rules.matchers import compile_condition
from postdesk.rules.model import Rule, RuleSet
from postdesk.rules.schema import FLAGS, NO_REPLY, Defaults, RulesFile


def load_rules(
    path: Path,
    *,
    queues: set[str] | None = None,
    templates: set[str] | None = None,
    agents: set[str] | None = None,
) -> RuleSet:
    """Validate the file; the named sets, when given and not empty, are what actions may name.

    Every check runs before anything is built, so a broken file raises and never replaces
    the rules in force.
    """
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: rules must be a mapping with `defaults` and `rules`")
    spec = validate_yaml(RulesFile, path, data)
    problems = _references(spec, queues, templates, agents)
    if problems:
        root = yaml.compose(path.read_text(encoding="utf-8"))
        raise ConfigError("\n".join(f"{path}:{line_of(root, loc)}: {msg}" for loc, msg in problems))
    rules = tuple(
        Rule(
            name=r.name,
            description=r.description,
            condition=compile_condition(r.if_) if r.if_ else None,
            actions=r.then,
            stop=r.stop,
            applies_to=r.applies_to,
        )
        for r in spec.rules
    )
    used = {flag for r in spec.rules if r.if_ for flag in _keys(r.if_.model_dump(by_alias=True))}
    return RuleSet(
        rules=rules, source=path, defaults=spec.defaults, flags=frozenset(used & set(FLAGS))
    )


def no_rules(queue: str) -> RuleSet:
    """A configuration without a `rules` key has no rules: every new ticket goes to its first
    queue with the default priority and acknowledgement."""
    return RuleSet(rules=(), source=None, defaults=Defaults(queue=queue), flags=frozenset())


def _keys(condition: object) -> set[str]:
    """Every key set anywhere in a dumped condition, nested ones included."""
    if isinstance(condition, dict):
        found = {k for k, v in condition.items() if v is not None}
        return found.union(*(_keys(v) for v in condition.values()))
    if isinstance(condition, list | tuple):
        return set().union(*(_keys(v) for v in condition))
    return set()


def _references(
    spec: RulesFile,
    queues: set[str] | None,
    templates: set[str] | None,
    agents: set[str] | None,
) -> list[tuple[list[str | int], str]]:
    problems: list[tuple[list[str | int], str]] = []

    def check(loc: list[str | int], key: str, value: str | None, known: set[str] | None) -> None:
        if (
            value is None
            or not known
            or value in known
            or (key == "autoreply" and value == NO_REPLY)
        ):
            return
        problems.append(
            ([*loc, key], f"unknown {key} {value!r} (known: {', '.join(sorted(known))})")
        )

    d = spec.defaults
    check(["defaults"], "queue", d.queue, queues)
    check(["defaults"], "autoreply", d.autoreply, templates)
    first: dict[str, int] = {}
    for i, rule in enumerate(spec.rules):
        if rule.name in first:
            problems.append(
                (
                    ["rules", i, "name"],
                    f"rule name {rule.name!r} is used twice (rule {first[rule.name] + 1})",
                )
            )
        first.setdefault(rule.name, i)
        loc: list[str | int] = ["rules", i, "then"]
        check(loc, "queue", rule.then.queue, queues)
        check(loc, "autoreply", rule.then.autoreply, templates)
        check(loc, "assignee", rule.then.assignee, agents)
    return problems
