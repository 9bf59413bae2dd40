"""What one message costs at least, part by part, next to what `ingest()` costs in all.

    python bench/ingest_floor.py [--messages 500] [--rounds 5]

On the benchmark mix, each part alone, in this process, in ms per message (median of
--rounds rounds over --messages messages):

- mail-parser reading the message (`MailParser.from_bytes`, the library DESIGN.md names);
- storing the raw bytes durably (`BlobStore.put`: a new file, fsync, rename, directory fsync);
- one SQLite write transaction with postdesk's settings (WAL, synchronous=FULL so that a
  commit survives a power cut, BEGIN IMMEDIATE), one small row, through the sqlite3 module
  without SQLAlchemy; and the same with synchronous=NORMAL, to show what durability costs;
- the whole `ingest()` on a fresh installation (parse, dedup, thread, rules, the
  acknowledgement composed and queued; no delivery, no process start-up), as shipped and,
  in alternating rounds, with synchronous=NORMAL.

The parser, the raw store and the FULL transaction are what any design keeping these
guarantees pays; their sum bounds the messages per second one core can reach.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mailparser
from scratch import scratch_app
from sqlalchemy import event
from workload import write

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.blobs import BlobStore


def per_message(raws: list[bytes], step: Callable[[bytes], object], rounds: int) -> float:
    """Median over rounds of the ms per message that ``step`` takes."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in raws:
            step(raw)
        times.append((time.perf_counter() - started) / len(raws) * 1000)
    return statistics.median(times)


def raw_store(folder: Path) -> Callable[[bytes], object]:
    """Every call stores bytes not seen before: a second put() of the same ones is free."""
    store = BlobStore(folder / "raw", ".eml")
    serial = itertools.count()
    return lambda raw: store.put(raw + next(serial).to_bytes(8))


def sqlite_commit(folder: Path, synchronous: str) -> Callable[[bytes], object]:
    conn = sqlite3.connect(folder / f"floor-{synchronous}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, size INTEGER)")

    def step(raw: bytes) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO rows (size) VALUES (?)", (len(raw),))
        conn.execute("COMMIT")

    return step


def relax(app: App) -> None:
    """Commits as they were before they were made durable, for the comparison only: every
    new connection of the app gets synchronous=NORMAL after postdesk's own FULL."""

    @event.listens_for(app.db.engine, "connect")
    def _normal(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    app.db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raws = [path.read_bytes() for path in write(folder / "mail", args.messages)]
        parts = {
            "mail-parser reads the message": per_message(
                raws, mailparser.MailParser.from_bytes, args.rounds
            ),
            "raw message stored and fsynced": per_message(raws, raw_store(folder), args.rounds),
            "one SQLite write transaction (synchronous=FULL)": per_message(
                raws, sqlite_commit(folder, "FULL"), args.rounds
            ),
        }
        normal = per_message(raws, sqlite_commit(folder, "NORMAL"), args.rounds)
        totals, relaxed_totals = [], []
        for _ in range(args.rounds):
            for durable, into in ((True, totals), (False, relaxed_totals)):
                with scratch_app(support_addresses=["support@example.com"]) as app:
                    if not durable:
                        relax(app)
                    into.append(per_message(raws, lambda raw: ingest(app, raw, "bench"), 1))
    for name, ms in parts.items():
        print(f"{name}: {ms:.2f} ms")
    print(f"(the same transaction with synchronous=NORMAL: {normal:.2f} ms)")
    floor = sum(parts.values())
    print(f"sum of these parts: {floor:.2f} ms, at most {1000 / floor:.0f} messages/s on one core")
    whole = statistics.median(totals)
    print(f"whole ingest() in process: {whole:.2f} ms, {1000 / whole:.0f} messages/s")
    relaxed = statistics.median(relaxed_totals)
    print(f"(the same with synchronous=NORMAL: {relaxed:.2f} ms, {1000 / relaxed:.0f} messages/s)")


if __name__ == "__main__":
    main()
