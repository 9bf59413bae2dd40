"""Latency from a mail submitted to the SMTP listener to its acknowledgement at the relay.

    python bench/smtp_latency.py [--messages 100]

Starts the real daemon on free ports with an aiosmtpd relay standing for the outside world,
submits messages one at a time, and prints the median and p99 of submit -> acknowledgement
received, and the median time of the SMTP transaction alone (until the 250).
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    relay_port, smtp_port = free_port(), free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=relay_port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(Path(tmp) / "data"),
                    "support_addresses": ["support@example.com"],
                    "listen": {"smtp": f"127.0.0.1:{smtp_port}"},
                    "outgoing": {"smtp": {"host": "127.0.0.1", "port": relay_port}},
                }
            )
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "--config", str(config), "run"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert daemon.stderr is not None
        for line in daemon.stderr:
            if "postdesk ready" in line:
                break
        threading.Thread(target=daemon.stderr.read, daemon=True).start()
        totals, transactions = [], []
        try:
            for i in range(args.messages):
                msg = EmailMessage()
                msg["From"] = f"customer{i}@example.org"
                msg["To"] = "support@example.com"
                msg["Subject"] = f"Question {i}"
                msg["Message-ID"] = make_msgid(domain="example.org")
                msg.set_content("Hello, a question about my order.")
                started = time.perf_counter()
                with smtplib.SMTP("127.0.0.1", smtp_port) as client:
                    client.send_message(msg)
                transactions.append(time.perf_counter() - started)
                totals.append(relay.wait(str(msg["Message-ID"])) - started)
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
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
