"""What the recovery at `postdesk run` start costs when nothing is lost: every raw message
in data_dir/raw/ (files, and the records of segments) is listed and looked up, in batches,
among the inbound rows.

    python bench/recover_scan.py [--messages 20000] [--group 1]

Raw messages and their rows are written directly (as ingest would leave them, without the
rest of ingest): a file each, or with --group above 1 one segment per that many messages.
Then `recover()` is timed over them; it must find nothing to do.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from datetime import UTC, datetime

from scratch import scratch_app

from postdesk.daemon.pipeline.recover import recover
from postdesk.store.models import Inbound

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with scratch_app(support_addresses=["support@example.com"]) as app:
        raws = [
            f"From: c{n}@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()
            for n in range(args.messages)
        ]
        for start in range(0, len(raws), args.group):
            app.raw.put_group(raws[start : start + args.group])
        rows = [
            {"sha256": hashlib.sha256(raw).hexdigest(), "source": "bench", "size": len(raw)}
            for raw in raws
        ]
        with app.db.transaction() as session:
            session.execute(
                Inbound.__table__.insert(),
                [{**row, "received_at": NOW, "status": "ticket_created"} for row in rows],
            )
        started = time.perf_counter()
        found = list(recover(app))
        elapsed = time.perf_counter() - started
    assert found == [], found
    per = elapsed / args.messages * 1e6
    stored = "raw files" if args.group == 1 else f"raw messages in segments of {args.group}"
    print(f"{args.messages} {stored}, all known: scanned in {elapsed:.2f} s ({per:.0f} µs each)")


if __name__ == "__main__":
    main()
