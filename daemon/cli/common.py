"""What every command does first: the app from `--config`, output as text or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from postdesk.daemon.app import App


def open_app(args: argparse.Namespace) -> App:
    return App.open(args.config)


def emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text(data))
