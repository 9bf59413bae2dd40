"""What `postdesk ingest -` and the running daemon say to each other over the local socket.

The dialogue is LMTP; two things are the project's own. The message travels base64-encoded,
so the daemon stores exactly the bytes the MTA piped (LMTP would turn bare LF line ends into
CRLF and refuse lines over 1,000 bytes), and the 250 carries the outcome as JSON, so the
client prints the same line an in-process ingest prints. Both ends import this module, and
the client imports nothing heavier than the standard library.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

REPLY_CHUNK = 400
"""Characters of the JSON per reply line (RFC 5321 allows 512 a line, code included)."""


def encode_message(raw: bytes) -> bytes:
    return base64.encodebytes(raw).replace(b"\n", b"\r\n")


def decode_message(content: bytes) -> bytes:
    """The piped bytes; ValueError for content that no `ingest -` sent."""
    try:
        return base64.b64decode(b"".join(content.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not a base64 message: {exc}") from exc


def accepted_reply(outcome: str, ticket: int | None, reason: str) -> str:
    """A 250 over as many lines as the JSON needs. It has no blanks (a space is written
    ``\\u0020``), since a client strips blanks at the ends of each reply line."""
    text = json.dumps(
        {"outcome": outcome, "ticket": ticket, "reason": reason},
        ensure_ascii=True,
        separators=(",", ":"),
    ).replace(" ", "\\u0020")
    chunks = [text[i : i + REPLY_CHUNK] for i in range(0, len(text), REPLY_CHUNK)]
    return "\r\n".join(
        f"250{'-' if i < len(chunks) - 1 else ' '}2.0.0 {chunk}" for i, chunk in enumerate(chunks)
    )


def read_accepted(text: str) -> dict[str, Any]:
    """The outcome of a reply's text as the client reads it (lines joined by newlines)."""
    data = json.loads("".join(line.removeprefix("2.0.0 ") for line in text.splitlines()))
    if not isinstance(data, dict) or not {"outcome", "ticket", "reason"} <= data.keys():
        raise ValueError(f"not an ingest outcome: {text!r}")
    return data


def outcome_line(name: str, outcome: str, ticket: int | None, reason: str) -> str:
    """The line `postdesk ingest` prints for each file, whichever process stored it."""
    return json.dumps(
        {"file": name, "outcome": outcome, "ticket": ticket, "reason": reason},
        ensure_ascii=False,
    )
