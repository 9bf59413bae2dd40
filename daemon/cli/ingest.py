"""`ingest`: what an MTA's pipe calls, one message or many files."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from postdesk.config.errors import PostdeskError
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_OK
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.runners.sender import deliver_due
from postdesk.store.schema import ensure_current

log = logging.getLogger("postdesk.cli")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Pipe delivery has no daemon to wake, so it sends what it queued itself, once, at the end."""
    app = open_app(args)
    ensure_current(app.db)
    queued = 0
    for name in args.files or ["-"]:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        result = ingest(app, raw, "pipe")
        queued += result.queued_mail
        print(
            json.dumps(
                {
                    "file": name,
                    "outcome": result.outcome,
                    "ticket": result.ticket_number,
                    "reason": result.reason,
                },
                ensure_ascii=False,
            )
        )
    if queued:
        try:
            deliver_due(app.db, app.settings)
        except PostdeskError as exc:
            log.warning("queued mail left for the daemon", extra={"error": str(exc)})
    return EX_OK
