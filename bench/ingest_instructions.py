"""CPU instructions per message of `postdesk ingest`, counted by Valgrind: a figure that
does not move with the machine's load, for comparing two versions of the code.

    python bench/ingest_instructions.py [--messages 200]

Needs `valgrind` (Debian package valgrind). Runs the same command as ingest_throughput.py
(SQLite, the benchmark mix, delivery of the acknowledgements at the end) under
`valgrind --tool=cachegrind --cache-sim=no`, over one message, over FEW messages and over
--messages more, each on a fresh installation, and prints the instructions of the first
run (start-up) and the difference per further message: in the `ingest` process, which
writes every message, and in the parse worker it starts for 20 files or more. Valgrind
counts each process apart, but a forked one starts from its parent's count at the fork,
so the worker's figure is the difference between the runs over FEW and over --messages
messages (both start it at the same point). Valgrind slows Python about fifty times: 200
messages take a minute or two. Python's bytecode caches are written (the first,
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

FEW = 40
"""Enough files for `ingest` to start its parse worker."""
REFS = re.compile(r"==(\d+)== I\s+refs:\s+([\d,]+)")
INSTALLED = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONHASHSEED": "0",
}
"""The environment of an installed postdesk: its bytecode cached, as the untimed first run
leaves it; with PYTHONDONTWRITEBYTECODE every run would compile postdesk's modules anew.
One hash seed, so that two runs of the same code count the same (sets and dicts of strings
otherwise vary their work from one run to the next)."""


def instructions(paths: list[Path]) -> tuple[int, int]:
    """Instructions of one `postdesk ingest` process over ``paths[1:]``, and of the processes
    it forked, on an installation that took ``paths[0]`` first (schema created, caches
    warm), as the throughput bench does."""
    with scratch_config(support_addresses=["support@example.com"]) as config:
        command = [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "ingest"]
        subprocess.run([*command, str(paths[0])], check=True, capture_output=True, env=INSTALLED)
        valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
        process = subprocess.Popen(
            [*valgrind, "--cachegrind-out-file=/dev/null", *command, *map(str, paths[1:])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=INSTALLED,
        )
        _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"ingest under valgrind failed:\n{stderr[-2000:]}")
    counts = {int(pid): int(refs.replace(",", "")) for pid, refs in REFS.findall(stderr)}
    if process.pid not in counts:
        raise SystemExit(f"no instruction count in valgrind's output:\n{stderr[-2000:]}")
    own = counts.pop(process.pid)
    return own, sum(counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.messages <= FEW:
        raise SystemExit(f"--messages must be more than {FEW}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(Path(tmp), args.messages + 2)
        one, _ = instructions(paths[:2])
        _, worker_few = instructions(paths[: FEW + 2])
        many, worker = instructions(paths)
    print(f"start-up and one message: {one / 1e6:,.0f} million instructions")
    print(
        f"per further message: {(many - one) / args.messages / 1e6:.2f} million instructions "
        f"in the ingest process, {(worker - worker_few) / (args.messages - FEW) / 1e6:.2f} "
        "million in its parse worker"
    )


if __name__ == "__main__":
    main()
