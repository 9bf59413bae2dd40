"""What every command does first: the app from `--config`, output as text or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from postdesk.daemon.app import App
from postdesk.store.schema import ensure_current


def open_app(args: argparse.Namespace, *, schema: bool = True) -> App:
    """The app of ``--config``; with ``schema``, only on a database with the current schema
    (a command that reads or writes tickets must not meet missing tables halfway)."""
    app = App.open(args.config)
    if schema:
        ensure_current(app.db, create=False)
    return app


def emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text(data))
