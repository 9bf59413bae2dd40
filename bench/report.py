"""Cost of `postdesk report` over a large ticket history.

    python bench/report.py [--tickets 100000] [--days 30] [--database URL]

Fills a fresh database (SQLite in a temp folder by default) with tickets spread over
``--days`` days, each with an agent reply and an autoreply event, most answered and resolved,
then times the weekly report (overall, by queue, and as HTML) in weekday business hours.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from scratch import scratch_app
from sqlalchemy import insert, select

from postdesk.daemon.app import App
from postdesk.daemon.reporting.report import build, render
from postdesk.store.models import Event, Message, Ticket

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CHUNK = 20_000
QUEUES = ("general", "ops", "billing")


def fill(app: App, tickets: int, days: int) -> None:
    span = timedelta(days=days).total_seconds()
    for start in range(0, tickets, CHUNK):
        rows = []
        for number in range(start + 1, min(start + CHUNK, tickets) + 1):
            created = NOW - timedelta(seconds=span * number / tickets)
            answered = created + timedelta(minutes=number % 600) if number % 20 else None
            resolved = created + timedelta(hours=number % 96) if number % 4 else None
            rows.append(
                {
                    "number": number,
                    "subject": f"Question {number}",
                    "status": "resolved" if resolved else "open",
                    "priority": ("low", "normal", "high", "urgent")[number % 4],
                    "queue": QUEUES[number % 3],
                    "requester": f"c{number % 5000}@example.org",
                    "assignee": f"agent{number % 12}@example.com",
                    "tags": [],
                    "language": "en",
                    "matched_rules": [],
                    "created_at": created,
                    "updated_at": created,
                    "first_response_at": answered,
                    "first_response_due": created + timedelta(hours=8),
                    "resolution_due": created + timedelta(days=5),
                    "resolved_at": resolved,
                    "reopen_count": int(number % 50 == 0),
                    "reminders_sent": 0,
                    "sla_flags": ["first_response_breach"] if number % 30 == 0 else [],
                }
            )
        with app.db.transaction() as session:
            session.execute(insert(Ticket), rows)
            ids = session.execute(
                select(Ticket.id, Ticket.created_at, Ticket.first_response_at, Ticket.assignee)
                .where(Ticket.number > start)
                .where(Ticket.number <= start + CHUNK)
            ).all()
            session.execute(
                insert(Message),
                [
                    {
                        "ticket_id": id,
                        "direction": "out",
                        "kind": "agent",
                        "from_addr": agent,
                        "to_addrs": [],
                        "cc_addrs": [],
                        "subject": "Re",
                        "body": "answer",
                        "created_at": answered,
                    }
                    for id, _, answered, agent in ids
                    if answered
                ],
            )
            session.execute(
                insert(Event),
                [
                    {
                        "ticket_id": id,
                        "at": created,
                        "actor": "postdesk",
                        "type": "autoreply_queued",
                        "data": {"template": "ack"},
                    }
                    for id, created, _, _ in ids
                ],
            )


def timed(label: str, work: Callable[[], object]) -> None:
    started = time.perf_counter()
    work()
    print(f"{label}: {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    args = parser.parse_args()
    with scratch_app(args.database, queues=[{"name": q} for q in QUEUES]) as app:
        started = time.perf_counter()
        fill(app, args.tickets, args.days)
        print(f"filled {args.tickets} tickets in {time.perf_counter() - started:.1f} s")
        week = (NOW - timedelta(days=7), NOW)
        month = (NOW - timedelta(days=args.days), NOW)
        timed("report, last 7 days", lambda: build(app, *week))
        timed(f"report, last {args.days} days", lambda: build(app, *month))
        timed(f"report, last {args.days} days by queue", lambda: build(app, *month, "queue"))
        timed(f"HTML, last {args.days} days", lambda: render(build(app, *month), "html"))


if __name__ == "__main__":
    main()
