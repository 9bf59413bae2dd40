"""`tickets list` and `tickets show`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from postdesk.daemon import clock
from postdesk.daemon.cli.common import emit, open_app
from postdesk.daemon.errors import EX_DATAERR, EX_OK
from postdesk.store.tickets import detail, list_tickets, load_ticket, summary


def cmd_tickets_list(args: argparse.Namespace) -> int:
    app = open_app(args)
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

    emit(args, rows, table)
    return EX_OK


def cmd_tickets_show(args: argparse.Namespace) -> int:
    app = open_app(args)
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
            head += [(m["new_text"] or m["body"]).strip()[:2000]]
        head += ["", "events:"] + [
            f"  {e['at']} {e['type']} {e['actor']} {e['data']}" for e in d["events"]
        ]
        return "\n".join(head)

    emit(args, data, text)
    return EX_OK
