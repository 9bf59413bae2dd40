"""The `postdesk` command: the only place that maps outcomes to exit codes (sysexits)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from postdesk.config.errors import PostdeskError
from postdesk.config.loader import EXAMPLE_DIR
from postdesk.daemon import clock, logs
from postdesk.daemon.app import App
from postdesk.daemon.errors import EX_CONFIG, EX_DATAERR, EX_OK, EX_USAGE, exit_code

log = logging.getLogger("postdesk.cli")

Handler = Callable[[argparse.Namespace], int]


def _app(args: argparse.Namespace) -> App:
    return App.open(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from postdesk.daemon.service import run

    run(_app(args))
    return EX_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    """Pipe delivery has no daemon to wake, so it sends what it queued itself, once, at the end."""
    from postdesk.daemon.ingest import ingest
    from postdesk.daemon.outbox import deliver_due
    from postdesk.store.schema import ensure_current

    app = _app(args)
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from postdesk.daemon.sweep import run

    app = _app(args)
    print(json.dumps(asdict(run(app, args.now or clock.now()))))
    return EX_OK


def cmd_send_outbox(args: argparse.Namespace) -> int:
    from postdesk.daemon.outbox import deliver_due

    app = _app(args)
    stats = deliver_due(app.db, app.settings, args.now or clock.now())
    print(json.dumps({"sent": stats.sent, "retried": stats.retried, "failed": stats.failed}))
    return EX_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    app = _app(args)
    problems = app.policy.templates.check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EX_CONFIG
    rules = len(app.policy.rules.rules)
    print(f"configuration OK: {rules} rules, database {app.settings.database_url}")
    return EX_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from postdesk.store.schema import upgrade

    before, after = upgrade(_app(args).db)
    print(f"database schema: {before or 'empty'} -> {after}")
    return EX_OK


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("config.yaml", "rules.yaml"):
        dest = target / name
        if dest.exists():
            print(f"{dest} exists, left as it is", file=sys.stderr)
            continue
        shutil.copyfile(EXAMPLE_DIR / name, dest)
        written.append(str(dest))
    print("\n".join(written) or "nothing written")
    return EX_OK


def _emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text(data))


def cmd_tickets_list(args: argparse.Namespace) -> int:
    from postdesk.store.tickets import list_tickets, summary

    app = _app(args)
    now = clock.now()
    with app.db.transaction() as session:
        rows = [summary(t, now) for t in list_tickets(session, args.status, now)]

    def table(rows: list[dict[str, Any]]) -> str:
        lines = [f"{'#':>6} {'temp':>5} {'status':<8} {'priority':<8} {'queue':<10} subject"]
        lines += [
            f"{r['number']:>6} {r['temperature']:>5} {r['status']:<8} {r['priority']:<8} "
            f"{r['queue']:<10} {r['subject'][:60]}  <{r['requester']}>"
            for r in rows
        ]
        return "\n".join(lines)

    _emit(args, rows, table)
    return EX_OK


def cmd_tickets_show(args: argparse.Namespace) -> int:
    from postdesk.store.tickets import detail, load_ticket

    app = _app(args)
    with app.db.transaction() as session:
        ticket = load_ticket(session, args.id)
        if ticket is None:
            print(f"no ticket {args.id}", file=sys.stderr)
            return EX_DATAERR
        data = detail(ticket, clock.now())

    def text(d: dict[str, Any]) -> str:
        head = [
            f"#{d['number']} {d['subject']}",
            f"status {d['status']}, priority {d['priority']}, queue {d['queue']}, "
            f"assignee {d['assignee'] or '-'}, tags {', '.join(d['tags']) or '-'}",
            f"requester {d['requester']}; participants "
            + ", ".join(p["email"] for p in d["participants"]),
            f"rules matched: {', '.join(d['matched_rules']) or '-'}",
        ]
        for m in d["messages"]:
            head += ["", f"--- {m['created_at']} {m['direction']} {m['kind']} from {m['from']}"]
            head += [m["body"].strip()[:2000]]
        head += ["", "events:"] + [
            f"  {e['at']} {e['type']} {e['actor']} {e['data']}" for e in d["events"]
        ]
        return "\n".join(head)

    _emit(args, data, text)
    return EX_OK


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from postdesk.store.inbound import quarantined, row_view

    app = _app(args)
    with app.db.transaction() as session:
        rows = [row_view(r) for r in quarantined(session)]
    _emit(
        args,
        rows,
        lambda rs: (
            "\n".join(
                f"{r['id']:>6} {r['received_at']} {r['from'] or '-':<30} {r['reason']}" for r in rs
            )
            or "quarantine is empty"
        ),
    )
    return EX_OK


def cmd_quarantine_show(args: argparse.Namespace) -> int:
    from postdesk.store.inbound import get_quarantined, row_view

    app = _app(args)
    with app.db.transaction() as session:
        row = get_quarantined(session, args.id)
        if row is None:
            print(f"no quarantined message {args.id}", file=sys.stderr)
            return EX_DATAERR
        data = row_view(row)
    raw = app.raw.get(data["sha256"])
    data["raw_path"] = str(app.raw.path(data["sha256"]))
    _emit(
        args,
        data,
        lambda d: (
            "\n".join(f"{k}: {v}" for k, v in d.items())
            + "\n\n"
            + raw[:4000].decode("utf-8", "replace")
        ),
    )
    return EX_OK


def cmd_quarantine_release(args: argparse.Namespace) -> int:
    from postdesk.daemon.ingest import ingest
    from postdesk.store.inbound import forget_quarantined, get_quarantined

    app = _app(args)
    with app.db.transaction() as session:
        row = get_quarantined(session, args.id)
        if row is None:
            print(f"no quarantined message {args.id}", file=sys.stderr)
            return EX_DATAERR
        sha256 = row.sha256
        forget_quarantined(session, row)
    result = ingest(app, app.raw.get(sha256), "release")
    print(
        json.dumps(
            {"outcome": result.outcome, "ticket": result.ticket_number, "reason": result.reason}
        )
    )
    return EX_OK


def cmd_status(args: argparse.Namespace) -> int:
    from postdesk.store.inbound import counts
    from postdesk.store.mailboxes import health as mailbox_health
    from postdesk.store.outbox import oldest_queued
    from postdesk.store.outbox import summary as outbox_summary
    from postdesk.store.schema import current_revision, head_revision

    app = _app(args)
    database = {
        "url": app.db.engine.url.render_as_string(),
        "schema": current_revision(app.db),
        "schema_expected": head_revision(app.db),
    }
    with app.db.transaction() as session:
        oldest = oldest_queued(session)
        data = {
            "database": database,
            "inbound": counts(session),
            "outbox": {
                **outbox_summary(session),
                "oldest_queued": oldest.isoformat() if oldest else None,
            },
            "listen": app.settings.listen.model_dump(),
            "mailboxes": mailbox_health(
                session, [m.name for m in app.settings.mailboxes], clock.now()
            ),
        }
    _emit(args, data, lambda d: json.dumps(d, indent=2))
    return EX_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Support figures for [since, until); the last 7 days until now unless told."""
    from datetime import timedelta

    from postdesk.daemon.report import build, render

    until = args.until or clock.now()
    since = args.since or until - timedelta(days=7)
    if since >= until:
        print("--since must be before --until", file=sys.stderr)
        return EX_USAGE
    text = render(build(_app(args), since, until, args.by), "json" if args.json else args.format)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return EX_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from postdesk.parsers import parse
    from postdesk.rules.engine import evaluate
    from postdesk.rules.explain import explain, explain_json

    app = _app(args)
    msg = parse(Path(args.file).read_bytes(), app.parse_context(keep_attachments=False))
    decision = evaluate(app.policy.rules, msg, explain=True)
    if args.json:
        print(json.dumps(explain_json(msg, decision), ensure_ascii=False, indent=2))
    else:
        print(explain(msg, decision))
    return EX_OK


def cmd_rules_replay(args: argparse.Namespace) -> int:
    from postdesk.config.errors import BadData
    from postdesk.parsers import parse
    from postdesk.rules.engine import evaluate
    from postdesk.rules.explain import diff
    from postdesk.rules.loader import load_rules

    app = _app(args)
    new = app.policy.rules
    settings = app.settings
    old = (
        load_rules(
            Path(args.against),
            queues={q.name for q in settings.queues},
            templates=app.policy.templates.names(),
            agents=set(settings.agent_addresses),
        )
        if args.against
        else new
    )
    ctx = app.parse_context(keep_attachments=False)
    changed = 0
    files = sorted(p for p in Path(args.dir).rglob("*") if p.is_file())
    for path in files:
        try:
            msg = parse(path.read_bytes(), ctx)
        except BadData as exc:
            print(f"{path}: not a ticket: {exc}")
            continue
        delta = diff(evaluate(old, msg), evaluate(new, msg))
        if delta:
            changed += 1
            print(f"{path}: " + "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in delta.items()))
    print(f"{changed} of {len(files)} messages would be routed differently")
    return EX_OK


def instant(text: str) -> datetime:
    """``--now``: ISO 8601, UTC when no offset is given; anything else is a usage error."""
    try:
        return clock.parse_now(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="config.yaml to use")
    common.add_argument("--log-level", default=argparse.SUPPRESS, help="DEBUG, INFO, WARNING")
    parser = argparse.ArgumentParser(prog="postdesk", parents=[common], description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Handler, help: str, into: Any = sub) -> argparse.ArgumentParser:
        p = into.add_parser(name, parents=[common], help=help)
        p.set_defaults(func=func)
        return p

    add("run", cmd_run, "run the daemon in the foreground")
    p = add("ingest", cmd_ingest, "ingest raw messages from files or stdin (MTA pipe)")
    p.add_argument("files", nargs="*", metavar="FILE")
    p = add("sweep", cmd_sweep, "run every due timed job once (reminders, closing, SLA, digest)")
    p.add_argument("--now", type=instant, default=None, help="ISO 8601 instant to act as of")
    p = add("send-outbox", cmd_send_outbox, "deliver everything due in the outbox once")
    p.add_argument("--now", type=instant, default=None, help="ISO 8601 instant to act as of")
    add("check-config", cmd_check_config, "validate config, rules and templates")
    p = add("status", cmd_status, "health of database and outbox")
    p.add_argument("--json", action="store_true")
    p = add("report", cmd_report, "support metrics for a period (default: the last 7 days)")
    p.add_argument("--since", type=instant, help="ISO 8601 start (inclusive)")
    p.add_argument("--until", type=instant, help="ISO 8601 end (exclusive), default now")
    p.add_argument("--by", choices=("queue", "agent", "priority"))
    p.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    p.add_argument("--output", help="write to this file instead of standard output")
    p.add_argument("--json", action="store_true", help="same as --format json")

    tickets = add("tickets", _usage, "list and show tickets")
    tsub = tickets.add_subparsers(dest="tickets_command", required=True)
    p = add("list", cmd_tickets_list, "tickets, hottest first", tsub)
    p.add_argument("--status")
    p.add_argument("--json", action="store_true")
    p = add("show", cmd_tickets_show, "one ticket with messages and events", tsub)
    p.add_argument("id", help="ticket number")
    p.add_argument("--json", action="store_true")

    quarantine = add("quarantine", _usage, "messages that could not become tickets")
    qsub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    p = add("list", cmd_quarantine_list, "quarantined messages with reasons", qsub)
    p.add_argument("--json", action="store_true")
    p = add("show", cmd_quarantine_show, "one quarantined message", qsub)
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p = add("release", cmd_quarantine_release, "run a quarantined message through ingest", qsub)
    p.add_argument("id", type=int)

    rules = add("rules", _usage, "dry-run and replay the routing rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = add("test", cmd_rules_test, "explain the rules' decision for one message", rsub)
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p = add("replay", cmd_rules_replay, "compare decisions over a folder of messages", rsub)
    p.add_argument("dir")
    p.add_argument("--against", help="older rules.yaml to compare with")

    db = add("db", _usage, "database schema")
    dsub = db.add_subparsers(dest="db_command", required=True)
    add("upgrade", cmd_db_upgrade, "apply migrations", dsub)
    p = add("init", cmd_init, "write a commented starter configuration")
    p.add_argument("dir")
    return parser


def _usage(args: argparse.Namespace) -> int:
    return EX_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EX_OK if exc.code == 0 else EX_USAGE
    args.config = getattr(args, "config", None)
    logs.setup(getattr(args, "log_level", "INFO").upper())
    try:
        return int(args.func(args))
    except PostdeskError as exc:
        print(f"postdesk: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        print(f"postdesk: {exc}", file=sys.stderr)
        return EX_DATAERR


if __name__ == "__main__":
    sys.exit(main())
