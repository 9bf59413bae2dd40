"""The `postdesk` command: one module per command group, each imported only when it runs."""

from postdesk.daemon.cli.main import main

__all__ = ["main"]
