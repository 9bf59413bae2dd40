"""What `postdesk ingest` loads to take one message: a pipe delivery pays its start-up for
every message, so the libraries one message does not need stay unimported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from postdesk.daemon.app import App
from postdesk.store.schema import HEAD, head_revision, is_current
from tests.helpers import mail, postdesk

NOT_FOR_ONE_MESSAGE = (
    "alembic",  # the schema is current: its stored revision is compared with HEAD
    "mako",
    "dotenv",  # no env_file in the config
    "holidays",  # no holiday calendar in the config
    "dateutil",  # no forward's date to read
    "inscriptis",  # no HTML-only mail
    "charset_normalizer",  # no undeclared 8-bit text
    "flufl.bounce",  # not a bounce
    "sqlalchemy.dialects.postgresql",  # SQLite
    "prometheus_client",  # no metrics served
)


def imported(config: Path, *args: str, stdin: bytes) -> set[str]:
    """The modules one `postdesk` command imports, read from ``-X importtime``."""
    command = [sys.executable, "-X", "importtime", "-m", "postdesk.daemon.cli"]
    done = subprocess.run(
        [*command, "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["outcome"] == "ticket_created"
    lines = done.stderr.decode().splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}


def test_head_is_the_newest_migration(app: App) -> None:
    assert head_revision(app.db) == HEAD
    assert is_current(app.db)


def test_ingest_of_one_message_loads_only_what_it_needs(
    write_config: Callable[..., Path],
) -> None:
    config = write_config(rules=None)
    assert postdesk(config, "db", "upgrade").returncode == 0
    modules = imported(config, "ingest", stdin=mail().as_bytes())
    assert "sqlalchemy" in modules and "mailparser" in modules and "jinja2" in modules
    loaded = [m for m in NOT_FOR_ONE_MESSAGE if m in modules]
    assert not loaded, f"imported by one plain message: {loaded}"
