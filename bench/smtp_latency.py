"""Latency from a mail submitted to the SMTP listener to its acknowledgement at the relay.

    python bench/smtp_latency.py [--messages 100]

Starts the real daemon on free ports with an aiosmtpd relay standing for the outside world,
submits messages one at a time, and prints the median and p99 of submit -> acknowledgement
received, and the median time of the SMTP transaction alone (until the 250).
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import threading
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from typing import Any

from aiosmtpd.controller import Controller
from scratch import free_port, running_daemon


class Relay:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.condition = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parent = BytesParser().parsebytes(envelope.content, headersonly=True)["In-Reply-To"]
        with self.condition:
            self.arrived[str(parent)] = time.perf_counter()
            self.condition.notify_all()
        return "250 OK"

    def wait(self, key: str, timeout: float = 30.0) -> float:
        with self.condition:
            self.condition.wait_for(lambda: key in self.arrived, timeout)
            return self.arrived[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()
    relay = Relay()
    relay_port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=relay_port)
    controller.start()
    totals, transactions = [], []
    try:
        with running_daemon(outgoing={"smtp": {"host": "127.0.0.1", "port": relay_port}}) as port:
            for i in range(args.messages):
                msg = EmailMessage()
                msg["From"] = f"customer{i}@example.org"
                msg["To"] = "support@example.com"
                msg["Subject"] = f"Question {i}"
                msg["Message-ID"] = make_msgid(domain="example.org")
                msg.set_content("Hello, a question about my order.")
                started = time.perf_counter()
                with smtplib.SMTP("127.0.0.1", port) as client:
                    client.send_message(msg)
                transactions.append(time.perf_counter() - started)
                totals.append(relay.wait(str(msg["Message-ID"])) - started)
    finally:
        controller.stop()
    ms = sorted(t * 1000 for t in totals)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"{args.messages} messages: submit -> acknowledgement at the relay: median "
        f"{statistics.median(ms):.1f} ms, p99 {p99:.1f} ms; SMTP transaction median "
        f"{statistics.median(transactions) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
