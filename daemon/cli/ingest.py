"""`ingest`: what an MTA's pipe calls, one message or many files.

The exit code decides whether the MTA keeps or bounces the mail, and Postfix bounces on
anything but 0 and 75. So once the message is stored (ticket, reply, duplicate, suppressed
or quarantined) it is 0, and every failure is 75: a broken config or rules file, an
unwritable data folder, a schema that needs `db upgrade`, an unreachable database, a bug.
None of those is the customer's fault, and each passes once an admin fixes it.

With the daemon running, `ingest -` for given recipients (Postfix's pipe) does not get here:
cli/thin_ingest.py hands the message to the daemon, and comes here only when none takes it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from postdesk.config.errors import PostdeskError
from postdesk.daemon.app import App
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.cli.progress import Progress
from postdesk.daemon.errors import EX_OK, EX_TEMPFAIL
from postdesk.daemon.handoff import outcome_line
from postdesk.daemon.pipeline.ingest import Delivery, ingest_group
from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.runners.sender import deliver_due
from postdesk.store.schema import ensure_current

log = logging.getLogger("postdesk.cli")


def cmd_ingest(args: argparse.Namespace) -> int:
    try:
        return _ingest(args)
    except PostdeskError as exc:
        print(f"postdesk: {exc}", file=sys.stderr)
        log.error("message left with the MTA for a retry", extra={"error": str(exc)})
    except Exception:
        log.exception("unexpected error; message left with the MTA for a retry")
    return EX_TEMPFAIL


CHUNK_FILES = 100
CHUNK_BYTES = 20 * 1024 * 1024
"""A chunk of files shares one raw segment and one commit; its size bounds the memory held."""

FAILED = "failed"

AHEAD_FROM = 20
"""Files from which a parse worker pays: its start costs about what a few messages take."""


def _ingest(args: argparse.Namespace) -> int:
    """Files go in chunks, each file's line printed once its chunk committed; the first
    chunk with a failure ends the run with 75 after the lines of what it did commit. Pipe
    delivery has no daemon to wake, so it sends what it queued itself, once, at the end."""
    app = open_app(args, schema=False)
    ensure_current(app.db)
    names = args.files or ["-"]
    ahead = ParseAhead() if len(names) >= AHEAD_FROM else None
    try:
        return _ingest_files(app, args, names, ahead)
    finally:
        if ahead is not None:
            ahead.close()


def _ingest_files(
    app: App, args: argparse.Namespace, names: list[str], ahead: ParseAhead | None
) -> int:
    progress = None
    if len(names) > 1 and sys.stdout.isatty():
        progress = Progress(len(names), sys.stderr)
        # the count says what each message's info line would; warnings still show
        logging.getLogger("postdesk.ingest").setLevel(logging.WARNING)
    queued = 0
    failure: Exception | None = None
    for chunk in _chunks(names):
        deliveries = [Delivery(raw, "pipe", tuple(args.recipient)) for _, raw in chunk]
        for (name, _), outcome in zip(
            chunk, ingest_group(app, deliveries, ahead=ahead), strict=True
        ):
            if isinstance(outcome, Exception):
                failure = failure or outcome
                _report(progress, FAILED, "")
                continue
            queued += outcome.queued_mail
            line = outcome_line(name, outcome.outcome, outcome.ticket_number, outcome.reason)
            _report(progress, outcome.outcome, line)
        if failure is not None:
            break
    if queued and failure is None:
        try:
            deliver_due(app)
        except PostdeskError as exc:
            log.warning("queued mail left for the daemon", extra={"error": str(exc)})
    if progress is not None:
        progress.summary()
    if failure is not None:
        raise failure
    return EX_OK


def _chunks(names: list[str]) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for name in names:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        chunk.append((name, raw))
        size += len(raw)
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _report(progress: Progress | None, outcome: str, line: str) -> None:
    """A file's JSON line on stdout, or on a terminal its count in the progress line. A
    failure has no line: the first one ends the run on stderr, every one is in the log."""
    if progress is None:
        if line:
            print(line)
    else:
        progress.done(outcome)
        progress.show()
