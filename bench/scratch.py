"""Fresh installations in a temporary folder for the benchmarks: in process, or the daemon."""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from postdesk.daemon.app import App
from postdesk.store.schema import ensure_current
from tests.helpers import descendants


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MEASURE = """\
import os, signal, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.execv(sys.argv[2], sys.argv[2:])
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(int(sys.argv[1]))
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024)
"""


def run_measured(command: list[str], timeout: int = 0) -> tuple[float, float]:
    """Wall-clock seconds and peak RSS (MB) of one child process, from its own rusage; a
    child still running after ``timeout`` seconds (0: no limit) is killed, which fails.

    The child is forked from a small fresh interpreter, not from the benchmark: Linux keeps
    the memory a child has between fork and exec in its peak, so forked from a process that
    holds a corpus every command, /bin/true too, would seem to need that much.
    """
    wrapper = [sys.executable, "-I", "-c", MEASURE, str(timeout), *command]
    seconds, code, peak = subprocess.run(wrapper, capture_output=True, check=True).stdout.split()
    if timeout and int(code) == -9:
        raise TimeoutError(f"{command[:5]} ... still running after {timeout} s")
    if int(code) != 0:
        raise SystemExit(f"{command[:5]} ... failed with exit code {code}")
    return float(seconds), float(peak)


@contextmanager
def fresh_database(server: str | None) -> Iterator[str | None]:
    """A new, empty database on the PostgreSQL server that ``server`` names, dropped
    afterwards so that no benchmark leaves tables behind; None (SQLite) passes through."""
    if not server:
        yield None
        return
    url = make_url(server)
    name = f"postdesk_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def _config(folder: Path, database: str | None, settings: dict[str, Any]) -> Path:
    """SQLite in ``folder`` unless ``database`` names an empty one."""
    data: dict[str, Any] = {
        "data_dir": str(folder / "data"),
        "listen": {"smtp": None},
        "outgoing": {"maildir": str(folder / "sent")},
        **settings,
    }
    if database:
        data["database"] = database
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def scratch_config(database: str | None = None, **settings: Any) -> Iterator[Path]:
    """The config file of a fresh installation; its folder holds the data and sent mail."""
    with tempfile.TemporaryDirectory() as tmp, fresh_database(database) as url:
        yield _config(Path(tmp), url, settings)


@contextmanager
def scratch_app(database: str | None = None, **settings: Any) -> Iterator[App]:
    with scratch_config(database, **settings) as config:
        app = App.open(str(config))
        ensure_current(app.db)
        try:
            yield app
        finally:
            app.db.dispose()


@dataclass
class Daemon:
    port: int
    process: subprocess.Popen[str]
    config: Path

    def peak_mb(self) -> float:
        """The daemon's peak RSS so far, as the kernel counts it (VmHWM)."""
        return _peak_mb(self.process.pid)

    def helpers_mb(self) -> float:
        """What the processes the daemon started (its parse worker) hold now besides the
        daemon's own figure: their proportional share (Pss), as pages a fork shares with
        the daemon count in both peaks."""
        return sum(_pss_mb(pid) for pid in descendants(self.process.pid))


def _peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def _pss_mb(pid: int) -> float:
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    (line,) = [x for x in rollup.splitlines() if x.startswith("Pss:")]
    return int(line.split()[1]) / 1024


@contextmanager
def running_daemon(database: str | None = None, **settings: Any) -> Iterator[Daemon]:
    """`postdesk run` listening for SMTP on a free port, yielded once it is ready."""
    port = free_port()
    settings = {"support_addresses": ["support@example.com"], **settings}
    settings["listen"] = {"smtp": f"127.0.0.1:{port}"}
    with scratch_config(database, **settings) as config:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "run"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert daemon.stderr is not None
        try:
            for line in daemon.stderr:
                if "postdesk ready" in line:
                    break
            threading.Thread(target=daemon.stderr.read, daemon=True).start()
            yield Daemon(port, daemon, config)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)


class Relay:
    """The outside world's mail server: notes when each acknowledgement arrives, keyed by
    the Message-ID of the mail it answers."""

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
            if not self.condition.wait_for(lambda: key in self.arrived, timeout):
                raise SystemExit(f"no acknowledgement of {key} within {timeout:.0f} s")
            return self.arrived[key]


@contextmanager
def relay() -> Iterator[tuple[Relay, int]]:
    """A Relay listening on a free port."""
    sink, port = Relay(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def median_p99(seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"median {statistics.median(ms):.1f} ms, p99 {statistics.quantiles(ms, n=100)[98]:.1f} ms"
    )
