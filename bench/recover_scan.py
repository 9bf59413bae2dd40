"""What the recovery at `postdesk run` start costs when nothing is lost: every raw file in
data_dir/raw/ is listed and looked up, in batches, among the inbound rows.

    python bench/recover_scan.py [--messages 20000]

Raw files and their rows are written directly (as ingest would leave them, without the rest
of ingest), then `recover()` is timed over them; it must find nothing to do.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with scratch_app(support_addresses=["support@example.com"]) as app:
        rows = []
        for n in range(args.messages):
            raw = f"From: c{n}@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()
            rows.append({"sha256": app.raw.put(raw), "source": "bench", "size": len(raw)})
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
    print(f"{args.messages} raw files, all known: scanned in {elapsed:.2f} s ({per:.0f} µs each)")


if __name__ == "__main__":
    main()
