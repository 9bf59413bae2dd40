"""Messages per second and acknowledgement latency through the SMTP listener with several
clients at once.

    python bench/smtp_throughput.py [--messages 1000] [--clients 8] [--database URL]

Starts the real daemon (outgoing mail into a Maildir), sends the benchmark mix of
bench/workload.py from --clients concurrent connections, and prints messages/s from the
first connection to the last 250 (every 250 means the message was stored, parsed and
committed, with the other sessions' messages waiting then, in one group), the median and
99th percentile of one SMTP transaction until its 250, the daemon's peak RSS and what its
parse worker holds besides (its Pss). Default database: a fresh SQLite file; --database
names a PostgreSQL server, on which a new database is created and dropped.
"""

from __future__ import annotations

import argparse
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor

from scratch import median_p99, running_daemon
from workload import messages


def client(port: int, raws: list[bytes], answered: list[float] | None = None) -> list[float]:
    """One connection sending its share; smtplib sends bytes as given, so lines end in CRLF.
    Returns each SMTP transaction's seconds, until its 250; ``answered`` gets the moment
    of each 250 too."""
    waited = []
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as connection:
        for raw in raws:
            wire = raw.replace(b"\n", b"\r\n")
            started = time.perf_counter()
            connection.sendmail("customer@example.org", ["support@example.com"], wire)
            ended = time.perf_counter()
            waited.append(ended - started)
            if answered is not None:
                answered.append(ended)
    return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server")
    args = parser.parse_args()
    mix = list(messages(args.messages))
    with running_daemon(args.database) as daemon, ThreadPoolExecutor(args.clients) as pool:
        started = time.perf_counter()
        shares = [mix[k :: args.clients] for k in range(args.clients)]
        waited = [
            seconds
            for done in [pool.submit(client, daemon.port, share) for share in shares]
            for seconds in done.result()
        ]
        elapsed = time.perf_counter() - started
        peak, helpers = daemon.peak_mb(), daemon.helpers_mb()
    kind = "PostgreSQL" if args.database else "SQLite"
    print(
        f"{args.messages} messages from {args.clients} clients in {elapsed:.1f} s: "
        f"{args.messages / elapsed:.0f} messages/s, daemon peak RSS {peak:.0f} MB "
        f"(its parse worker {helpers:.0f} MB more) ({kind})"
    )
    print(f"SMTP transaction until the 250: {median_p99(waited)}")


if __name__ == "__main__":
    main()
