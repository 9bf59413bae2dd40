"""The `postdesk` command: the only place that maps outcomes to exit codes (sysexits)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import Any, cast

from postdesk.config.errors import PostdeskError
from postdesk.daemon import clock, logs
from postdesk.daemon.cli.thin_ingest import hand_over
from postdesk.daemon.errors import EX_DATAERR, EX_OK, EX_USAGE, exit_code

Handler = Callable[[argparse.Namespace], int]
COMMANDS = "postdesk.daemon.cli"


def instant(text: str) -> datetime:
    """``--now``: ISO 8601, UTC when no offset is given; anything else is a usage error."""
    try:
        return clock.parse_now(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="config.yaml to use")
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        type=str.upper,
        choices=logs.LEVELS,
        help="DEBUG, INFO, WARNING, ERROR, CRITICAL (any case)",
    )
    parser = argparse.ArgumentParser(prog="postdesk", parents=[common], description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: str, help: str, into: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = into.add_parser(name, parents=[common], help=help)
        p.set_defaults(func=func)
        return p

    add("run", "service:cmd_run", "run the daemon in the foreground")
    p = add("ingest", "ingest:cmd_ingest", "ingest raw messages from files or stdin (MTA pipe)")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument(
        "--recipient",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="envelope recipient (Postfix ${recipient}); may be repeated",
    )
    p = add(
        "sweep",
        "service:cmd_sweep",
        "run every due timed job once (reminders, closing, SLA, digest)",
    )
    p.add_argument("--now", type=instant, default=None, help="ISO 8601 instant to act as of")
    p = add("send-outbox", "service:cmd_send_outbox", "deliver everything due in the outbox once")
    p.add_argument("--now", type=instant, default=None, help="ISO 8601 instant to act as of")
    add(
        "recover",
        "service:cmd_recover",
        "ingest raw messages that reached data_dir/raw but not the database (run does it at start)",
    )
    add("check-config", "setup:cmd_check_config", "validate config, rules and templates")
    p = add("status", "status:cmd_status", "health of database and outbox")
    p.add_argument("--json", action="store_true")
    p = add(
        "report", "report:cmd_report", "support metrics for a period (default: the last 7 days)"
    )
    p.add_argument("--since", type=instant, help="ISO 8601 start (inclusive)")
    p.add_argument("--until", type=instant, help="ISO 8601 end (exclusive), default now")
    p.add_argument("--by", choices=("queue", "agent", "priority"))
    p.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    p.add_argument("--output", help="write to this file instead of standard output")
    p.add_argument("--json", action="store_true", help="same as --format json")

    tickets = add("tickets", "", "list and show tickets")
    tsub = tickets.add_subparsers(dest="tickets_command", required=True)
    p = add("list", "tickets:cmd_tickets_list", "tickets, hottest first", tsub)
    p.add_argument("--status")
    p.add_argument("--json", action="store_true")
    p = add("show", "tickets:cmd_tickets_show", "one ticket with messages and events", tsub)
    p.add_argument("id", help="ticket number")
    p.add_argument("--json", action="store_true")

    quarantine = add("quarantine", "", "messages that could not become tickets")
    qsub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    p = add("list", "quarantine:cmd_quarantine_list", "quarantined messages with reasons", qsub)
    p.add_argument("--json", action="store_true")
    p = add("show", "quarantine:cmd_quarantine_show", "one quarantined message", qsub)
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p = add(
        "release",
        "quarantine:cmd_quarantine_release",
        "run a quarantined message through ingest",
        qsub,
    )
    p.add_argument("id", type=int)

    mail = add("outbox", "", "outgoing mail: what waits, what failed, retry")
    osub = mail.add_subparsers(dest="outbox_command", required=True)
    p = add("list", "outbox:cmd_outbox_list", "queued and failed mail, newest first", osub)
    p.add_argument("--status", choices=("queued", "failed", "sent"))
    p.add_argument("--limit", type=int, default=200, help="at most this many rows (200)")
    p.add_argument("--json", action="store_true")
    p = add("show", "outbox:cmd_outbox_show", "one outgoing mail and why it waits", osub)
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p = add("retry", "outbox:cmd_outbox_retry", "put failed mail back in the queue", osub)
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--failed", action="store_true", help="every failed mail")

    rules = add("rules", "", "dry-run and replay the routing rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = add("test", "rules:cmd_rules_test", "explain the rules' decision for one message", rsub)
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p = add("replay", "rules:cmd_rules_replay", "compare decisions over a folder of messages", rsub)
    p.add_argument("dir")
    p.add_argument("--against", help="older rules.yaml to compare with")

    db = add("db", "", "database schema")
    dsub = db.add_subparsers(dest="db_command", required=True)
    add("upgrade", "setup:cmd_db_upgrade", "apply migrations", dsub)
    p = add("init", "setup:cmd_init", "write a commented starter configuration")
    p.add_argument("dir")
    p.add_argument(
        "--data-dir",
        metavar="PATH",
        help="where the data goes (e.g. /var/lib/postdesk); default: DIR/data",
    )
    return parser


def handler(spec: str) -> Handler:
    """A command's module is imported only when that command runs, so `--help` and the light
    commands start without loading the database, the parser and the templates."""
    module, _, name = spec.partition(":")
    return cast(Handler, getattr(import_module(f"{COMMANDS}.{module}"), name))


def main(argv: list[str] | None = None) -> int:
    """A pipe delivery goes to the running daemon first, before anything heavy is loaded."""
    handed = hand_over(sys.argv[1:] if argv is None else argv)
    if handed is not None:
        return handed
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EX_OK if exc.code == 0 else EX_USAGE
    args.config = getattr(args, "config", None)
    logs.setup(getattr(args, "log_level", "INFO").upper())
    try:
        return handler(args.func)(args)
    except PostdeskError as exc:
        print(f"postdesk: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        print(f"postdesk: {exc}", file=sys.stderr)
        return EX_DATAERR
