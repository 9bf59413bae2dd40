"""Draining an IMAP backlog: messages per second from a real local Dovecot into tickets.

    python bench/imap_backlog.py [--messages 10000] [--database URL]

Appends the backlog (the benchmark mix of bench/workload.py) first, then starts one poller
in this process, as `postdesk run` does, and times it until every message is handled and
moved to Processed. Prints messages/s and this process's peak RSS (which includes holding
the poller, not the generated mail: that is appended and dropped before the poller
starts). Needs `dovecot-imapd`. Default database: a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imap_latency import mailbox
from scratch import scratch_app
from workload import messages

from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.runners.imap import Poller
from tests.imap_server import Dovecot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server")
    args = parser.parse_args()
    server = Dovecot()
    server.start()
    try:
        mix = messages(args.messages)
        with server.client() as client:
            while chunk := list(itertools.islice(mix, 500)):
                client.multiappend("INBOX", chunk)
        with scratch_app(
            args.database,
            support_addresses=["support@example.com"],
            mailboxes=[mailbox(server.port)],
        ) as app:
            stop = threading.Event()
            ahead = ParseAhead()  # as the daemon's: forked before the poller's thread starts
            ahead.start()
            poller = Poller(
                app, app.settings.mailboxes[0], lambda: None, stop, "bench", ahead=ahead
            )
            started = time.perf_counter()
            thread = threading.Thread(target=poller.run)
            thread.start()
            done = poller.wait(lambda p: p.handled >= args.messages, 3600)
            elapsed = time.perf_counter() - started
            stop.set()
            thread.join()
            ahead.close()
        assert done, f"only {poller.handled} of {args.messages} messages handled"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.messages} messages in {elapsed:.1f} s: {args.messages / elapsed:.0f} "
            f"messages/s, peak RSS {peak:.0f} MB"
        )
    finally:
        server.remove()


if __name__ == "__main__":
    main()
