"""The daemon's parse worker lives and dies with it: concurrent sessions are parsed by it
and answered, and neither a clean stop nor `kill -9` of the daemon leaves a process behind."""

from __future__ import annotations

import os
import select
import smtplib
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Daemon
from tests.helpers import descendants, free_port, mail

CLIENTS = 8


def gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """Those of ``pids`` still alive once they have had ``timeout`` seconds to exit."""
    deadline = time.monotonic() + timeout
    alive: set[int] = set()
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                alive.add(pid)
        finally:
            os.close(fd)
    return alive


def send_concurrently(port: int, first: int) -> list[str]:
    def one(i: int) -> str:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            message = mail(sender=f"customer{i}@example.org", subject=f"Question {i}")
            client.send_message(message)
            return str(client.noop()[0])

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(first, first + 3 * CLIENTS)))


@pytest.mark.parametrize("stop", ["sigterm", "kill -9"])
def test_the_parse_worker_ends_with_the_daemon(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    tmp_path: Path,
    stop: str,
) -> None:
    port = free_port()
    config = write_config(listen={"smtp": f"127.0.0.1:{port}"})
    daemon = start_daemon(config)
    daemon.drain()
    helpers = descendants(daemon.process.pid)
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in helpers}
    assert names == {"postdesk-parse"}, "one parse worker, forked with the daemon"
    assert send_concurrently(port, 0) == ["250"] * 3 * CLIENTS
    database = sqlite3.connect(tmp_path / "data" / "postdesk.db")
    assert database.execute("SELECT count(*) FROM tickets").fetchone() == (3 * CLIENTS,)
    helpers |= descendants(daemon.process.pid)
    if stop == "sigterm":
        daemon.process.terminate()
        assert daemon.process.wait(timeout=30) == 0
    else:
        daemon.process.kill()
        daemon.process.wait(timeout=30)
    assert gone(helpers) == set()
