"""Latency from an IMAP APPEND to the acknowledgement at the relay, through IDLE.

    python bench/imap_latency.py [--messages 100] [--database URL]

Starts the real daemon with one mailbox on a real local Dovecot (needs `dovecot-imapd`) and
an aiosmtpd relay for its outgoing mail; appends messages one at a time and prints the
median and p99 from the start of the APPEND to the acknowledgement arriving at the relay.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import median_p99, relay, running_daemon
from smtp_latency import question

from tests.imap_server import PASSWORD, USER, Dovecot


def mailbox(port: int) -> dict[str, object]:
    """The Dovecot user's INBOX as postdesk's one mailbox."""
    os.environ["POSTDESK_BENCH_IMAP_PASSWORD"] = PASSWORD
    return {
        "name": "support",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": USER,
        "password_env": "POSTDESK_BENCH_IMAP_PASSWORD",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server")
    args = parser.parse_args()
    server = Dovecot()
    server.start()
    latencies = []
    try:
        with (
            relay() as (sink, relay_port),
            running_daemon(
                args.database,
                mailboxes=[mailbox(server.port)],
                outgoing={"smtp": {"host": "127.0.0.1", "port": relay_port}},
            ),
            server.client() as client,
        ):
            for i in range(args.messages):
                msg = question(i)
                started = time.perf_counter()
                client.append("INBOX", msg.as_bytes())
                latencies.append(sink.wait(str(msg["Message-ID"])) - started)
    finally:
        server.remove()
    print(
        f"{args.messages} messages: APPEND -> acknowledgement at the relay: {median_p99(latencies)}"
    )


if __name__ == "__main__":
    main()
