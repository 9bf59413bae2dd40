"""`run`, and the daemon's timed jobs run once: `sweep`, `send-outbox`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from postdesk.daemon import clock
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_OK, EX_TEMPFAIL
from postdesk.daemon.pipeline.recover import recover
from postdesk.daemon.runners import service
from postdesk.daemon.runners.sender import deliver_due
from postdesk.daemon.sweeps import run as sweeps


def cmd_run(args: argparse.Namespace) -> int:
    service.run(open_app(args, schema=False))
    return EX_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    app = open_app(args)
    print(json.dumps(asdict(sweeps.run(app, args.now or clock.now()))))
    return EX_OK


def cmd_send_outbox(args: argparse.Namespace) -> int:
    app = open_app(args)
    print(json.dumps(asdict(deliver_due(app, args.now or clock.now()))))
    return EX_OK


def cmd_recover(args: argparse.Namespace) -> int:
    """What `run` does at start, for an admin who will not restart the daemon: exit 75 when
    a file could not be ingested (its file stays; the log says why)."""
    failed = 0
    for sha256, result in recover(open_app(args)):
        failed += result is None
        outcome = {"outcome": result.outcome, "ticket": result.ticket_number} if result else {}
        print(json.dumps({"sha256": sha256, **(outcome or {"outcome": "failed"})}))
    return EX_TEMPFAIL if failed else EX_OK
