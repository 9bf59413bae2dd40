"""What pydantic cannot see in one key: names that must exist elsewhere in the settings,
and secrets that must be there when the daemon needs them. `postdesk check-config` reports
each as ``file:line: key: message``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import get_args

import yaml

from postdesk.config.loader import as_written, line_of
from postdesk.config.schema import Secret, Settings
from postdesk.rules.schema import Priority

PRIORITIES: tuple[str, ...] = get_args(Priority)
UNIX_PATH_MAX = 107
"""Bytes of a Unix socket's path on Linux (sun_path holds 108, the last one a NUL)."""


def cross_references(settings: Settings, file: Path | None) -> list[str]:
    """Every problem found, in the order of the keys; empty when all is well."""
    root = yaml.compose(file.read_text(encoding="utf-8")) if file else None
    where = str(file) if file else "(embedded default)"

    def at(loc: Sequence[int | str], message: str) -> str:
        loc = as_written(root, loc)
        return f"{where}:{line_of(root, loc) if root else 0}: {'.'.join(map(str, loc))}: {message}"

    return [at(loc, message) for loc, message in _problems(settings)]


def _problems(settings: Settings) -> Iterator[tuple[list[int | str], str]]:
    queues = [q.name for q in settings.queues]
    if settings.forward_ack and not settings.agent_auth.trusted_authserv_ids:
        yield (
            ["agents", "forward_ack"],
            "no forward can be proven without agent_auth.trusted_authserv_ids (a forward "
            "carries no reply token), so no forwarded customer would be acknowledged",
        )
    for i, agent in enumerate(settings.agents):
        for j, queue in enumerate(agent.queues):
            if queue not in queues:
                yield ["agents", i, "queues", j], _unknown("queue", queue, queues)
    for priority in settings.sla:
        if priority not in PRIORITIES:
            yield ["sla", priority], _unknown("priority", priority, PRIORITIES)
    for i, entry in enumerate(settings.queues):
        for priority in entry.sla or {}:
            if priority not in PRIORITIES:
                yield ["queues", i, "sla", priority], _unknown("priority", priority, PRIORITIES)
    for i, channel in enumerate(settings.channels):
        for j, priority in enumerate(channel.for_):
            if priority not in PRIORITIES:
                yield ["channels", i, "for", j], _unknown("priority", priority, PRIORITIES)
    if settings.outgoing.smtp is not None:
        relay = settings.outgoing.smtp
        yield from _secret(["outgoing", "smtp"], relay, needed=relay.username is not None)
    socket = settings.pipe_socket
    chosen = "socket" in settings.listen.model_fields_set  # the default one is optional
    if chosen and socket is not None and len(os.fsencode(socket)) > UNIX_PATH_MAX:
        yield (
            ["listen", "socket"],
            (
                f"{socket} is longer than a Unix socket path may be ({UNIX_PATH_MAX} bytes): "
                "give an absolute path that is shorter, or null"
            ),
        )
    for i, mailbox in enumerate(settings.mailboxes):
        if mailbox.oauth2 and mailbox.oauth2.token_file:
            problem = _unreadable(mailbox.oauth2.token_file)
            if problem:
                yield ["mailboxes", i, "oauth2", "token_file"], problem
        yield from _secret(["mailboxes", i], mailbox, needed=mailbox.oauth2 is None)


def _secret(
    loc: list[int | str], secret: Secret, *, needed: bool
) -> Iterator[tuple[list[int | str], str]]:
    """The password must be there now: the daemon reads it at every login, when a missing
    one only shows as mail that stopped."""
    if secret.password_env:
        if os.environ.get(secret.password_env) is None:
            yield (
                [*loc, "password_env"],
                (
                    f"environment variable {secret.password_env} is not set "
                    "(run check-config with the daemon's environment)"
                ),
            )
    elif secret.password_file:
        problem = _unreadable(secret.password_file)
        if problem:
            yield [*loc, "password_file"], problem
    elif needed:
        yield loc, "no password: set password_env or password_file"


def _unreadable(path: Path) -> str:
    try:
        path.read_bytes()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return ""


def _unknown(what: str, name: str, known: Sequence[str]) -> str:
    return f"unknown {what} {name!r} (known: {', '.join(known) or 'none'})"
