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
from pathlib import Path

from postdesk.config.errors import PostdeskError
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_OK, EX_TEMPFAIL
from postdesk.daemon.handoff import outcome_line
from postdesk.daemon.pipeline.ingest import ingest
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


def _ingest(args: argparse.Namespace) -> int:
    """Pipe delivery has no daemon to wake, so it sends what it queued itself, once, at the end."""
    app = open_app(args, schema=False)
    ensure_current(app.db)
    queued = 0
    for name in args.files or ["-"]:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        result = ingest(app, raw, "pipe", envelope_to=tuple(args.recipient))
        queued += result.queued_mail
        print(outcome_line(name, result.outcome, result.ticket_number, result.reason))
    if queued:
        try:
            deliver_due(app)
        except PostdeskError as exc:
            log.warning("queued mail left for the daemon", extra={"error": str(exc)})
    return EX_OK
