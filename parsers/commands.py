"""Agent commands: ``#word argument`` lines at the very top of a reply.

Only the leading block counts, so a ``#1`` or a hashtag further down in the text is never
taken for a command. A first line like ``#hashtag with words`` that names no command is
text; an unknown word alone (``#clsoe``) or after a command is kept as a command, so the
agent is told about the typo instead of having it relayed to the customer. Whether the
sender may command anything is decided later, by the daemon, from the proof of identity;
the parser only reads.
"""

from __future__ import annotations

import re

from postdesk.parsers.model import Command

KNOWN = (
    "close",
    "resolve",
    "pending",
    "hold",
    "open",
    "assign",
    "priority",
    "queue",
    "tag",
    "untag",
    "note",
    "cc",
    "reply",
    "merge",
    "to",
    "requester",
)
LINE = re.compile(r"^#([a-z]+)\b[ \t]*(.*)$", re.IGNORECASE)


def commands(new_text: str) -> tuple[Command, ...]:
    found: list[Command] = []
    for raw in new_text.splitlines():
        line = raw.strip()
        if not line and not found:
            continue
        match = LINE.match(line)
        if match is None or (not found and match[1].lower() not in KNOWN and match[2]):
            break
        found.append(Command(match[1].lower(), match[2].strip(), line))
    return tuple(found)


def without_commands(new_text: str, found: tuple[Command, ...]) -> str:
    """The reply text the customer should see: the command lines removed."""
    if not found:
        return new_text
    lines = new_text.splitlines()
    skipped = 0
    while lines and skipped < len(found):
        if lines[0].strip():
            skipped += 1
        lines.pop(0)
    return "\n".join(lines).strip("\n")
