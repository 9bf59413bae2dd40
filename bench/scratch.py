"""Fresh installations in a temporary folder for the benchmarks: in process, or the daemon."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from daemon.app import App
from store.schema import ensure_current


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(folder: Path, database: str | None, settings: dict[str, Any]) -> Path:
    """SQLite in ``folder`` unless ``database`` names another empty database."""
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
def scratch_app(database: str | None = None, **settings: Any) -> Iterator[App]:
    with tempfile.TemporaryDirectory() as tmp:
        app = App.open(str(_config(Path(tmp), database, settings)))
        ensure_current(app.db)
        try:
            yield app
        finally:
            app.db.dispose()


@contextmanager
def running_daemon(database: str | None = None, **settings: Any) -> Iterator[int]:
    """`postdesk run` listening for SMTP on a free port, which is yielded once it is ready."""
    port = free_port()
    settings = {"support_addresses": ["support@example.com"], **settings}
    settings["listen"] = {"smtp": f"127.0.0.1:{port}"}
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), database, settings)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "--config", str(config), "run"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert daemon.stderr is not None
        try:
            for line in daemon.stderr:
                if "postdesk ready" in line:
                    break
            threading.Thread(target=daemon.stderr.read, daemon=True).start()
            yield port
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
