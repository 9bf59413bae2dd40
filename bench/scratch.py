"""A fresh installation in a temporary folder for the in-process benchmarks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from daemon.app import App
from store.schema import ensure_current


@contextmanager
def scratch_app(database: str | None = None, **settings: Any) -> Iterator[App]:
    """SQLite in the temporary folder unless ``database`` names another empty database."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        data: dict[str, Any] = {
            "data_dir": str(Path(tmp) / "data"),
            "listen": {"smtp": None},
            "outgoing": {"maildir": str(Path(tmp) / "sent")},
            **settings,
        }
        if database:
            data["database"] = database
        config.write_text(yaml.safe_dump(data))
        app = App.open(str(config))
        ensure_current(app.db)
        try:
            yield app
        finally:
            app.db.dispose()
