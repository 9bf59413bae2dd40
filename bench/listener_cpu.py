"""Where the SMTP listener's CPU goes under load: the daemon's event loop, its other threads,
its parse worker, and what the machine has left.

    python bench/listener_cpu.py [--messages 4000] [--clients 8] [--window 5]

Starts the real daemon as bench/smtp_throughput.py does and sends the benchmark mix from
--clients connections, as its clients do; once they have sent for two seconds, reads the
CPU time of each of the daemon's threads, of its parse worker and of the machine from
/proc, again --window seconds later, and prints each one's share of a core and its
milliseconds per message answered in the window. The event loop is the daemon's main
thread (aiosmtpd's protocol, the committer's bookkeeping); the writer's groups and the
sender's runs go through the default executor's threads, the raw segments through their
own: all share one interpreter lock, so the daemon's figures together cannot pass one core.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scratch import running_daemon
from smtp_throughput import client
from workload import messages

from tests.helpers import descendants

TICKS = os.sysconf("SC_CLK_TCK")


def thread_ticks(pid: int) -> dict[int, int]:
    """User and system ticks of each live thread of ``pid``."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        found[int(task.name)] = int(fields[11]) + int(fields[12])
    return found


def machine_ticks() -> tuple[int, int]:
    """All ticks and idle ticks of the machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    mix = list(messages(args.messages))
    answered: list[float] = []
    with running_daemon() as daemon, ThreadPoolExecutor(args.clients) as pool:
        pid = daemon.process.pid

        shares = [mix[k :: args.clients] for k in range(args.clients)]
        sending = [pool.submit(client, daemon.port, share, answered) for share in shares]
        time.sleep(2)  # past the daemon's first groups and the worker's start
        workers = descendants(pid)
        before = {p: thread_ticks(p) for p in [pid, *workers]}
        machine_before, began = machine_ticks(), time.perf_counter()
        time.sleep(args.window)
        after = {p: thread_ticks(p) for p in [pid, *workers]}
        machine_after, ended = machine_ticks(), time.perf_counter()
        for done in sending:
            done.result()
    if ended > max(answered):
        raise SystemExit("the clients finished inside the window: give more --messages")
    count = sum(1 for at in answered if began <= at < ended)
    seconds = ended - began

    def used(p: int, tids: set[int]) -> float:
        return sum(after[p][t] - before[p].get(t, 0) for t in tids) / TICKS

    loop = used(pid, {pid})
    others = used(pid, set(after[pid]) - {pid})
    parse = sum(used(p, set(after[p])) for p in workers)
    idle = (machine_after[1] - machine_before[1]) / (machine_after[0] - machine_before[0])
    print(f"{count} messages answered in {seconds:.1f} s: {count / seconds:.0f} messages/s")
    for name, cpu in [
        ("daemon, event loop", loop),
        ("daemon, other threads (writer, sender, raw segments)", others),
        ("parse worker", parse),
    ]:
        print(f"{name}: {cpu / seconds:.2f} cores, {cpu / count * 1000:.2f} ms a message")
    print(f"machine idle: {idle:.0%} of its {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
