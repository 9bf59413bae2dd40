"""Latency from IMAP APPEND to the acknowledgement row in the outbox, with IDLE.

    python bench/imap_latency.py [--messages 100] [--database URL]

One poller idles on a real local Dovecot; each message is appended once the previous one
is done, and timed from the start of the APPEND to the commit that queued its
acknowledgement (the moment the daemon would wake its sender). Prints median and p95.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.imap_backlog import bench_app
from daemon.imap import Poller
from tests.helpers import mail
from tests.imap_server import Dovecot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--database")
    args = parser.parse_args()
    server = Dovecot()
    server.start()
    queued = threading.Event()
    latencies = []
    try:
        with bench_app(server.port, args.database) as app, server.client() as client:
            stop = threading.Event()
            poller = Poller(app, app.settings.mailboxes[0], queued.set, stop, "bench")
            thread = threading.Thread(target=poller.run)
            thread.start()
            try:
                for i in range(args.messages):
                    assert poller.wait(lambda p: p.idling, 30), "the poller is not idling"
                    queued.clear()
                    raw = mail(sender=f"Customer <c{i}@example.org>", subject=f"q {i}").as_bytes()
                    started = time.perf_counter()
                    client.append("INBOX", raw)
                    assert queued.wait(30), f"message {i} got no acknowledgement"
                    latencies.append(time.perf_counter() - started)
            finally:
                stop.set()
                thread.join()
    finally:
        server.remove()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"{len(latencies)} messages: APPEND -> outbox row median "
        f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
