"""Throughput of `postdesk ingest` on generated mail, on a fresh SQLite installation.

    python bench/ingest_throughput.py [--messages 1000] [--runs 3]

Prints messages per second for each run and the median. Each run is one `postdesk ingest`
process given every file, as an MTA batch or a backlog replay would; it includes parsing,
threading, rules, the acknowledgement in the outbox, and fsync of every raw message.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import yaml

SUBJECTS = [
    "Printer is on fire",
    "Не работает оплата счёта",
    "Invoice 2026-11 is wrong",
    "Site down since 10:00",
    "Как сменить пароль?",
]


def generate(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = f"Customer {i} <customer{i % 200}@example.org>"
        msg["To"] = "support@example.com"
        msg["Subject"] = f"{SUBJECTS[i % len(SUBJECTS)]} ({i})"
        msg["Message-ID"] = make_msgid(domain="example.org")
        msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
        msg.set_content(f"Hello,\n\nrequest number {i}: " + "the details of the problem. " * 20)
        if i % 10 == 0:
            msg.add_attachment(
                b"%PDF-1.4 " * 2000,
                maintype="application",
                subtype="pdf",
                filename=f"invoice-{i}.pdf",
            )
        path = folder / f"{i:05d}.eml"
        path.write_bytes(msg.as_bytes())
        paths.append(path)
    return paths


def run_once(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mails = root / "mail"
        mails.mkdir()
        paths = generate(mails, count)
        config = root / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(root / "data"),
                    "support_addresses": ["support@example.com"],
                    "listen": {"smtp": None},
                    "outgoing": {"maildir": str(root / "sent")},
                }
            )
        )
        command = [sys.executable, "-m", "daemon.cli", "--config", str(config), "ingest"]
        subprocess.run([*command, str(paths[0])], check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([*command, *map(str, paths[1:])], check=True, capture_output=True)
        return (count - 1) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = []
    for run in range(args.runs):
        rates.append(run_once(args.messages))
        print(f"run {run + 1}: {rates[-1]:.0f} messages/s")
    print(f"median: {statistics.median(rates):.0f} messages/s ({args.messages} messages, SQLite)")


if __name__ == "__main__":
    main()
