"""Messages per second through the SMTP listener with several clients at once.

    python bench/smtp_throughput.py [--messages 1000] [--clients 8] [--database URL]

Starts the real daemon (outgoing mail into a Maildir), sends --messages mails from
--clients concurrent connections, and prints messages/s from the first connection to the
last 250. Every 250 means the message was stored, parsed and committed.
"""

from __future__ import annotations

import argparse
import smtplib
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid

from scratch import running_daemon


def client(port: int, numbers: range) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as connection:
        for i in numbers:
            msg = EmailMessage()
            msg["From"] = f"customer{i}@example.org"
            msg["To"] = "support@example.com"
            msg["Subject"] = f"Question {i}"
            msg["Message-ID"] = make_msgid(domain="example.org")
            msg.set_content("Hello,\n\nmy order has not arrived yet. " * 5)
            connection.send_message(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    args = parser.parse_args()
    with running_daemon(args.database) as port:
        share = -(-args.messages // args.clients)
        threads = [
            threading.Thread(
                target=client,
                args=(port, range(k * share, min((k + 1) * share, args.messages))),
            )
            for k in range(args.clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    print(
        f"{args.messages} messages from {args.clients} clients in {elapsed:.1f} s: "
        f"{args.messages / elapsed:.0f} messages/s"
    )


if __name__ == "__main__":
    main()
