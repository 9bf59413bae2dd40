"""`run`, and the daemon's timed jobs run once: `sweep`, `send-outbox`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from postdesk.daemon import clock
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_OK
from postdesk.daemon.runners import service
from postdesk.daemon.runners.sender import deliver_due
from postdesk.daemon.sweeps import run as sweeps


def cmd_run(args: argparse.Namespace) -> int:
    service.run(open_app(args))
    return EX_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    app = open_app(args)
    print(json.dumps(asdict(sweeps.run(app, args.now or clock.now()))))
    return EX_OK


def cmd_send_outbox(args: argparse.Namespace) -> int:
    app = open_app(args)
    stats = deliver_due(app.db, app.settings, args.now or clock.now())
    print(json.dumps({"sent": stats.sent, "retried": stats.retried, "failed": stats.failed}))
    return EX_OK
