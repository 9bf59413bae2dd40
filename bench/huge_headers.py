"""Time and peak memory of `postdesk ingest` for one mail with a huge Cc field.

    .venv/bin/python bench/huge_headers.py [--addresses 10000 50000] [--timeout 600]

Each mail carries that many Cc addresses, every one with an encoded-word display name (as a
mass mailing with Russian names writes them), about 90 bytes an address: 10,000 make a
900 kB mail. Prints, per count, the wall-clock time and the peak resident size of one
`ingest` process (start-up included), and the ratio of time and memory to the smallest
count: linear growth keeps the time ratio near the ratio of sizes or below it.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path

from scratch import run_measured, scratch_config


def huge_cc_mail(count: int) -> bytes:
    """A customer mail whose Cc names ``count`` addresses, each with an encoded-word name."""
    names = ",\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(f'Получатель {n}'.encode()).decode()}?= "
        f"<cc{n:06d}@example.net>"
        for n in range(count)
    )
    head = (
        "From: Ann Customer <ann@example.org>\r\n"
        "To: support@localhost\r\n"
        f"Cc: {names}\r\n"
        "Subject: Printer is on fire\r\n"
        f"Message-ID: <huge-cc-{count}@example.org>\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    )
    return head.encode("ascii") + b"Hello, the printer in room 4 is on fire.\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    first: tuple[int, float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for count in sorted(args.addresses):
            path = Path(tmp) / f"cc-{count}.eml"
            path.write_bytes(huge_cc_mail(count))
            size_kb = path.stat().st_size / 1024
            with scratch_config() as config:
                ingest = [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config)]
                try:
                    seconds, peak = run_measured(
                        [*ingest, "ingest", str(path)], timeout=args.timeout
                    )
                except TimeoutError:
                    print(f"{count} addresses ({size_kb:.0f} kB): over {args.timeout} s, killed")
                    continue
            line = f"{count} addresses ({size_kb:.0f} kB): {seconds:.2f} s, peak RSS {peak:.0f} MB"
            if first is None:
                first = (count, seconds, peak)
            else:
                base_count, base_seconds, base_peak = first
                line += (
                    f" ({count / base_count:.0f}x the addresses of the first: "
                    f"{seconds / base_seconds:.1f}x the time, {peak / base_peak:.1f}x the memory)"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
