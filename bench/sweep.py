"""Cost of a sweep over a large ticket table with a few hundred tickets due.

    python bench/sweep.py [--tickets 1000000] [--due 300] [--database URL]

Fills a fresh database (SQLite in a temp folder by default) with closed and open tickets,
makes ``--due`` of them pending with a reminder due, then times one sweep that finds
nothing due (the cost of looking) and one that sends the reminders (looking plus work).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from scratch import scratch_app
from sqlalchemy import insert

from postdesk.daemon.app import App
from postdesk.daemon.sweeps.run import run
from postdesk.store.models import Ticket

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CHUNK = 20_000


def fill(app: App, tickets: int, due: int) -> None:
    created = NOW - timedelta(days=30)
    for start in range(0, tickets, CHUNK):
        rows = []
        for number in range(start + 1, min(start + CHUNK, tickets) + 1):
            pending = number <= due
            rows.append(
                {
                    "number": number,
                    "subject": f"Question {number}",
                    "status": "pending" if pending else ("closed" if number % 10 else "open"),
                    "priority": "normal",
                    "queue": "general",
                    "requester": f"c{number % 5000}@example.org",
                    "tags": [],
                    "language": "en",
                    "matched_rules": [],
                    "created_at": created,
                    "updated_at": created,
                    "reopen_count": 0,
                    "reminders_sent": 0,
                    "sla_flags": [],
                    "next_reminder_at": NOW - timedelta(minutes=1) if pending else None,
                    "sla_check_at": None,
                }
            )
        with app.db.transaction() as session:
            session.execute(insert(Ticket), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=300)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    args = parser.parse_args()
    with scratch_app(args.database) as app:
        started = time.perf_counter()
        fill(app, args.tickets, args.due)
        print(f"filled {args.tickets} tickets in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        idle = run(app, NOW - timedelta(hours=1))
        looked = time.perf_counter() - started
        started = time.perf_counter()
        busy = run(app, NOW)
        worked = time.perf_counter() - started
        assert idle.reminders == 0 and busy.reminders == args.due
        print(f"sweep with nothing due: {looked * 1000:.0f} ms")
        print(
            f"sweep sending {busy.reminders} reminders: {worked * 1000:.0f} ms "
            f"({worked / busy.reminders * 1000:.2f} ms per reminder)"
        )


if __name__ == "__main__":
    main()
