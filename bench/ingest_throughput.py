"""Throughput and peak memory of `postdesk ingest` on the benchmark mix.

    python bench/ingest_throughput.py [--messages 1000] [--runs 3] [--database URL]

Prints messages per second and the peak RSS of each run, then the median rate. Each run
is a fresh installation (SQLite unless --database names a PostgreSQL server, on which a
new database is created and dropped) and one `postdesk ingest` process given every file,
as an MTA batch or a backlog replay would; it includes parsing, threading, rules, the
acknowledgement in the outbox, and every raw message durable before its chunk commits.
One message is ingested by an earlier process, so the schema is made before the clock
starts; the timed process's own start-up is counted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scratch import run_measured, scratch_config
from workload import write


def run_once(paths: list[Path], database: str | None) -> tuple[float, float]:
    """Messages per second and peak RSS (MB) of one ingest process over ``paths[1:]``."""
    with scratch_config(database, support_addresses=["support@example.com"]) as config:
        command = [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "ingest"]
        subprocess.run([*command, str(paths[0])], check=True, capture_output=True)
        elapsed, peak = run_measured([*command, *map(str, paths[1:])])
    return (len(paths) - 1) / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(Path(tmp), args.messages + 1)
        rates = []
        for run in range(args.runs):
            rate, peak = run_once(paths, args.database)
            rates.append(rate)
            print(f"run {run + 1}: {rate:.0f} messages/s, peak RSS {peak:.0f} MB")
    kind = "PostgreSQL" if args.database else "SQLite"
    print(f"median: {statistics.median(rates):.0f} messages/s ({args.messages} messages, {kind})")


if __name__ == "__main__":
    main()
