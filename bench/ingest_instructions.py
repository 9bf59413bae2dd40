"""CPU instructions per message of `postdesk ingest`, counted by Valgrind: a figure that
does not move with the machine's load, for comparing two versions of the code.

    python bench/ingest_instructions.py [--messages 200]

Needs `valgrind` (Debian package valgrind). Runs the same command as ingest_throughput.py
(SQLite, the benchmark mix, delivery of the acknowledgements at the end) under
`valgrind --tool=cachegrind --cache-sim=no`, once over one message and once over
--messages more, each on a fresh installation, and prints the instructions of the first
run (start-up) and the difference per further message. Valgrind slows Python about fifty
times: 200 messages take a minute or two. Python's bytecode caches are written (the first,
untimed run writes postdesk's), as on an installed system, whatever PYTHONDONTWRITEBYTECODE
says in the caller's environment.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scratch import scratch_config
from workload import write

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The environment of an installed postdesk: its bytecode cached, as the untimed first run
leaves it; with PYTHONDONTWRITEBYTECODE every run would compile postdesk's modules anew."""


def instructions(paths: list[Path]) -> int:
    """Instructions of one `postdesk ingest` process over ``paths[1:]``, on an installation
    that took ``paths[0]`` first (schema created, caches warm), as the throughput bench does."""
    with scratch_config(support_addresses=["support@example.com"]) as config:
        command = [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "ingest"]
        subprocess.run([*command, str(paths[0])], check=True, capture_output=True, env=INSTALLED)
        valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
        done = subprocess.run(
            [*valgrind, "--cachegrind-out-file=/dev/null", *command, *map(str, paths[1:])],
            capture_output=True,
            text=True,
            check=True,
            env=INSTALLED,
        )
    found = REFS.search(done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(Path(tmp), args.messages + 2)
        one = instructions(paths[:2])
        many = instructions(paths)
    print(f"start-up and one message: {one / 1e6:,.0f} million instructions")
    print(f"per further message: {(many - one) / args.messages / 1e6:.2f} million instructions")


if __name__ == "__main__":
    main()
