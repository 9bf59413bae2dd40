"""Latency from a mail submitted to the SMTP listener to its acknowledgement at the relay.

    python bench/smtp_latency.py [--messages 100] [--database URL]

Starts the real daemon on free ports with an aiosmtpd relay standing for the outside world,
submits messages one at a time, and prints the median and p99 of submit -> acknowledgement
received, and of the SMTP transaction alone (until the 250).
"""

from __future__ import annotations

import argparse
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid

from scratch import median_p99, relay, running_daemon


def question(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"customer{i}@example.org"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Question {i}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("Hello, a question about my order.")
    return msg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server")
    args = parser.parse_args()
    totals, transactions = [], []
    with (
        relay() as (sink, relay_port),
        running_daemon(
            args.database, outgoing={"smtp": {"host": "127.0.0.1", "port": relay_port}}
        ) as daemon,
    ):
        for i in range(args.messages):
            msg = question(i)
            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", daemon.port) as client:
                client.send_message(msg)
            transactions.append(time.perf_counter() - started)
            totals.append(sink.wait(str(msg["Message-ID"])) - started)
    print(f"{args.messages} messages: submit -> acknowledgement at the relay: {median_p99(totals)}")
    print(f"SMTP transaction until the 250: {median_p99(transactions)}")


if __name__ == "__main__":
    main()
