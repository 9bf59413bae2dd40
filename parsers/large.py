"""Long base64 bodies set aside before parsing, then decoded chunk by chunk from the raw bytes.

Parsing builds a str copy of every body, and decoding one copies it several times more: a
25 MB attachment cost twelve times its size in memory. So, in a large message, each long
run of base64 lines is replaced by a one-line placeholder before parsing, and the
attachment it stands for is later decoded straight from the raw message, a chunk at a time,
into the blob store. A placeholder carries a nonce drawn for each message: no message can
forge one.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

LARGE_MESSAGE = 1024 * 1024
"""Only messages bigger than this are searched, so small ones cost nothing more."""
LARGE_RUN = 256 * 1024
"""Runs of base64 lines shorter than this stay in the message."""
CHUNK = 1024 * 1024
"""Bytes of the raw message decoded at a time."""
# A line that fails ends the run, so the scan is linear. The repetitions are possessive,
# which matches the same text: a greedy repetition of lines keeps a backtracking entry for
# every line, 116 MB for a 25 MB attachment (a counted one, such as {1000,}, backtracks
# quadratically), and a line too long is dropped at once instead of shortened 76 times.
RUN = re.compile(rb"(?m)^[A-Za-z0-9+/]{4,76}+={0,2}\r?\n(?:[A-Za-z0-9+/]{1,76}+={0,2}\r?\n)*+")


@dataclass(frozen=True)
class Run:
    """The base64 lines ``raw[start:end]``, which decode to ``size`` bytes."""

    start: int
    end: int
    size: int


def runs(raw: bytes) -> list[Run]:
    """The long base64 runs of a large message that the stdlib would decode plainly.

    A run with padding before its last line, or one character too many for whole bytes,
    takes the stdlib's lenient fallbacks; such a run stays in the message for it to read.
    """
    if len(raw) <= LARGE_MESSAGE:
        return []
    found = []
    for match in RUN.finditer(raw):
        start, end = match.span()
        if end - start < LARGE_RUN:
            continue
        last_line = max(raw.rfind(b"\n", start, end - 1) + 1, start)
        if raw.find(b"=", start, last_line) != -1:
            continue
        line_ends = raw.count(b"\n", start, end) + raw.count(b"\r", start, end)
        chars = end - start - line_ends - raw.count(b"=", last_line, end)
        if chars % 4 != 1:
            found.append(Run(start, end, chars // 4 * 3 + max(chars % 4 - 1, 0)))
    return found


def set_aside(raw: bytes, found: list[Run]) -> tuple[bytes, dict[str, Run]]:
    """``raw`` with each run replaced by a placeholder line, and the run each one stands for.

    A placeholder is itself a line of base64 characters, so the parser builds the same tree.
    """
    if not found:
        return raw, {}
    nonce = secrets.token_hex(16)
    pieces: list[bytes] = []
    marks: dict[str, Run] = {}
    last = 0
    for index, run in enumerate(found):
        mark = f"PostdeskSetAside{nonce}{index:08d}"
        marks[mark] = run
        ending = b"\r\n" if raw[run.end - 2 : run.end] == b"\r\n" else b"\n"
        pieces += (raw[last : run.start], mark.encode("ascii"), ending)
        last = run.end
    pieces.append(raw[last:])
    return b"".join(pieces), marks


def decode(raw: bytes, run: Run) -> Iterator[bytes]:
    """The bytes a run stands for, a chunk at a time; padding can only end the run."""
    carry = b""
    for offset in range(run.start, run.end, CHUNK):
        text = carry + raw[offset : min(offset + CHUNK, run.end)].translate(None, b"\r\n=")
        whole = len(text) - len(text) % 4
        carry = text[whole:]
        yield binascii.a2b_base64(text[:whole])
    if carry:
        yield binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))
