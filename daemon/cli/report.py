"""`report`: support figures for a period."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from postdesk.daemon import clock
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_OK, EX_USAGE
from postdesk.daemon.reporting.report import build, render


def cmd_report(args: argparse.Namespace) -> int:
    """Support figures for [since, until); the last 7 days until now unless told."""
    until = args.until or clock.now()
    since = args.since or until - timedelta(days=7)
    if since >= until:
        print("--since must be before --until", file=sys.stderr)
        return EX_USAGE
    text = render(
        build(open_app(args), since, until, args.by), "json" if args.json else args.format
    )
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return EX_OK
