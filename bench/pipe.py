"""A whole `postdesk ingest -` process per message, as Postfix's pipe runs it, against
`python -c "import smtplib"` on the same interpreter.

    python bench/pipe.py [--runs 30] [--in-process-runs 5] [--instructions] [--database URL]

Starts the real daemon (`postdesk run`, SQLite unless --database names a PostgreSQL server)
and runs, in alternating rounds, the baseline and the README's pipe command
(`postdesk --config config.yaml ingest --recipient support@example.com`) with a new message
on stdin each time, which the command hands to the daemon over its local socket. Prints the
median wall-clock time of each, from the start of the process to its exit (the daemon's
durable commit included), and their ratio; then, alternating with the baseline too, the
same command ingesting in its own process (`listen.socket: null`), as it does when no
daemon runs. With --instructions, also
the CPU instructions of the client process alone under Valgrind, which machine load does
not move.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from scratch import running_daemon
from smtp_latency import question

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
BASELINE = [sys.executable, "-c", "import smtplib"]


def pipe_command(config: Path) -> list[str]:
    """The README's master.cf argv, with this installation's command and config."""
    command = Path(sys.executable).parent / "postdesk"
    return [str(command), "--config", str(config), "ingest", "--recipient", "support@example.com"]


def timed(command: list[str], stdin: bytes = b"") -> float:
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} exited {done.returncode}:\n{done.stderr.decode()}")
    if stdin and json.loads(done.stdout)["outcome"] != "ticket_created":
        raise SystemExit(f"{command} did not create a ticket: {done.stdout.decode()}")
    return elapsed


def instructions(command: list[str], stdin: bytes = b"") -> int:
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
    valgrind.append("--cachegrind-out-file=/dev/null")
    done = subprocess.run([*valgrind, *command], input=stdin, capture_output=True, check=True)
    found = REFS.search(done.stderr.decode())
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]!r}")
    return int(found.group(1).replace(",", ""))


def ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1000:.1f} ms"


def ratio(seconds: list[float], baseline: list[float]) -> float:
    return statistics.median(seconds) / statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--in-process-runs", type=int, default=5)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server")
    args = parser.parse_args()
    with running_daemon(args.database) as daemon:
        command = pipe_command(daemon.config)
        timed(command, question(0).as_bytes())  # the daemon's first message warms its caches
        baseline, pipe = [], []
        for i in range(1, args.runs + 1):
            baseline.append(timed(BASELINE))
            pipe.append(timed(command, question(i).as_bytes()))
        alone = yaml.safe_load(daemon.config.read_text())
        alone["listen"]["socket"] = None
        in_process_config = daemon.config.with_name("in-process.yaml")
        in_process_config.write_text(yaml.safe_dump(alone))
        beside, in_process = [], []
        for i in range(1, args.in_process_runs + 1):
            beside.append(timed(BASELINE))
            in_process.append(
                timed(pipe_command(in_process_config), question(args.runs + i).as_bytes())
            )
        counts = None
        if args.instructions:
            counts = (instructions(BASELINE), instructions(command, question(10_000).as_bytes()))
    kind = "PostgreSQL" if args.database else "SQLite"
    print(f'python -c "import smtplib": {ms(baseline)} ({args.runs} runs)')
    print(f"postdesk ingest - to the daemon: {ms(pipe)} ({args.runs} runs, {kind})")
    print(f"ratio: {ratio(pipe, baseline):.2f}x (target: within 3x)")
    print(
        f"postdesk ingest - in process: {ms(in_process)} ({args.in_process_runs} runs), "
        f"{ratio(in_process, beside):.1f}x the baseline of those rounds ({ms(beside)})"
    )
    if counts:
        print(
            f"instructions: import smtplib {counts[0] / 1e6:.0f} M, ingest - client "
            f"{counts[1] / 1e6:.0f} M ({counts[1] / counts[0]:.2f}x)"
        )


if __name__ == "__main__":
    main()
