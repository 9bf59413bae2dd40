"""Draining an IMAP backlog: messages per second from a real local Dovecot into tickets.

    python bench/imap_backlog.py [--messages 10000] [--database URL]

Appends the backlog first, then starts one poller (as `postdesk run` does) and times it
until every message is a ticket and moved to Processed. Needs `dovecot-imapd` installed.
Default database: a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_app
from daemon.app import App
from daemon.imap import Poller
from tests.helpers import mail
from tests.imap_server import PASSWORD, USER, Dovecot


@contextmanager
def bench_app(port: int, database: str | None) -> Iterator[App]:
    """A fresh installation whose one mailbox is the local Dovecot's."""
    os.environ["POSTDESK_BENCH_IMAP_PASSWORD"] = PASSWORD
    mailbox = {
        "name": "support",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": USER,
        "password_env": "POSTDESK_BENCH_IMAP_PASSWORD",
    }
    with scratch_app(
        database, support_addresses=["support@example.com"], mailboxes=[mailbox]
    ) as app:
        yield app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--database")
    args = parser.parse_args()
    server = Dovecot()
    server.start()
    try:
        with server.client() as client:
            for start in range(0, args.messages, 500):
                end = min(start + 500, args.messages)
                client.multiappend(
                    "INBOX",
                    [
                        mail(
                            sender=f"Customer <c{i % 300}@example.org>", subject=f"q {i}"
                        ).as_bytes()
                        for i in range(start, end)
                    ],
                )
        with bench_app(server.port, args.database) as app:
            stop = threading.Event()
            poller = Poller(app, app.settings.mailboxes[0], lambda: None, stop, "bench")
            started = time.perf_counter()
            thread = threading.Thread(target=poller.run)
            thread.start()
            done = poller.wait(lambda p: p.handled >= args.messages, 3600)
            elapsed = time.perf_counter() - started
            stop.set()
            thread.join()
        assert done, f"only {poller.handled} of {args.messages} messages handled"
        print(
            f"{args.messages} messages in {elapsed:.1f} s: {args.messages / elapsed:.0f} messages/s"
        )
    finally:
        server.remove()


if __name__ == "__main__":
    main()
