"""What one message costs at least, part by part, next to what `ingest()` costs in all.

    python bench/ingest_floor.py [--messages 500] [--rounds 5] [--group 100]

On the benchmark mix, each part alone, in this process, in ms per message (median of
--rounds rounds over --messages messages):

- mail-parser reading the message (`MailParser.from_bytes`, the library DESIGN.md names);
- storing the raw bytes durably, three ways: a file per message (a new file, fsync, rename,
  directory fsync: how a message received alone is kept); one segment file per --group
  messages with one fsync (`RawStore.put_group`, what postdesk does for a group); and, the
  option not taken, the bytes in a BLOB column of one SQLite transaction (FULL) per group;
- one SQLite write transaction with postdesk's settings (WAL, synchronous=FULL so that a
  commit survives a power cut, BEGIN IMMEDIATE), one small row, through the sqlite3 module
  without SQLAlchemy, per message and per group; and per message with synchronous=NORMAL,
  to show what durability costs;
- the whole of ingest on a fresh installation (parse, dedup, thread, rules, the
  acknowledgement composed and queued; no delivery, no process start-up): one message at a
  time (`ingest()`) and --group at a time (`ingest_group()`), in alternating rounds.

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

import mailparser
from scratch import scratch_app
from workload import write

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import Delivery, ingest_group
from postdesk.store.blobs import BlobStore
from postdesk.store.raw import RawStore

Step = Callable[[list[bytes]], object]
"""What is timed: one call per group of messages (a group of one: one message at a time)."""


def per_message(raws: list[bytes], step: Step, rounds: int, group: int = 1) -> float:
    """Median over rounds of the ms per message that ``step`` takes, ``group`` at a time."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for start in range(0, len(raws), group):
            step(raws[start : start + group])
        times.append((time.perf_counter() - started) / len(raws) * 1000)
    return statistics.median(times)


def unseen(raws: list[bytes], serial: itertools.count[int]) -> list[bytes]:
    """The same messages made new bytes: a second store of the same ones is free."""
    return [raw + next(serial).to_bytes(8) for raw in raws]


def raw_files(folder: Path) -> Step:
    store = BlobStore(folder / "raw-files", ".eml")
    serial = itertools.count()
    return lambda raws: [store.put(raw) for raw in unseen(raws, serial)]


def raw_segments(folder: Path, app: App) -> Step:
    store = RawStore(folder / "raw-segments", app.db)
    serial = itertools.count()
    return lambda raws: store.put_group(unseen(raws, serial))


def sqlite_commit(folder: Path, synchronous: str, keep_raw: bool = False) -> Step:
    """One transaction per call: a small row per message, with its bytes if ``keep_raw``."""
    name = f"floor-{synchronous}-{'raw' if keep_raw else 'rows'}-{time.monotonic_ns()}.db"
    conn = sqlite3.connect(folder / name, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, size INTEGER, raw BLOB)")

    def step(raws: list[bytes]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO rows (size, raw) VALUES (?, ?)",
            [(len(raw), raw if keep_raw else None) for raw in raws],
        )
        conn.execute("COMMIT")

    return step


def parse_each(raws: list[bytes]) -> object:
    return [mailparser.MailParser.from_bytes(raw) for raw in raws]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--group", type=int, default=100)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    group = args.group
    with tempfile.TemporaryDirectory() as tmp, scratch_app() as scratch:
        folder = Path(tmp)
        raws = [path.read_bytes() for path in write(folder / "mail", args.messages)]
        parts = {
            "mail-parser reads the message": per_message(raws, parse_each, args.rounds),
            f"raw messages in one segment per {group} (one fsync)": per_message(
                raws, raw_segments(folder, scratch), args.rounds, group
            ),
            f"one SQLite write transaction (synchronous=FULL) per {group}": per_message(
                raws, sqlite_commit(folder, "FULL"), args.rounds, group
            ),
        }
        others = {
            "raw message in a file of its own (fsync, rename, folder fsync)": per_message(
                raws, raw_files(folder), args.rounds
            ),
            f"raw bytes inside the SQLite transaction (FULL), one per {group}": per_message(
                raws, sqlite_commit(folder, "FULL", keep_raw=True), args.rounds, group
            ),
            "one SQLite write transaction (synchronous=FULL) per message": per_message(
                raws, sqlite_commit(folder, "FULL"), args.rounds
            ),
            "the same with synchronous=NORMAL": per_message(
                raws, sqlite_commit(folder, "NORMAL"), args.rounds
            ),
        }
        alone, grouped = [], []
        for _ in range(args.rounds):
            for size, into in ((1, alone), (group, grouped)):
                with scratch_app(support_addresses=["support@example.com"]) as app:
                    into.append(per_message(raws, whole(app), 1, size))
    for name, ms in parts.items():
        print(f"{name}: {ms:.2f} ms")
    for name, ms in others.items():
        print(f"({name}: {ms:.2f} ms)")
    floor = sum(parts.values())
    print(f"sum of these parts: {floor:.2f} ms, at most {1000 / floor:.0f} messages/s on one core")
    for name, totals in ((f"{group} at a time", grouped), ("one at a time", alone)):
        ms = statistics.median(totals)
        print(f"whole ingest in process, {name}: {ms:.2f} ms, {1000 / ms:.0f} messages/s")


def whole(app: App) -> Step:
    return lambda raws: ingest_group(app, [Delivery(raw, "bench") for raw in raws])


if __name__ == "__main__":
    main()
