"""Schema versions: apply Alembic migrations and refuse to run on an old schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from postdesk.config.errors import ConfigError
from postdesk.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision(db: Database) -> str:
    head = ScriptDirectory.from_config(_alembic_config(db)).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = current_revision(db)
    cfg = _alembic_config(db)
    with db.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision(db)


def ensure_current(db: Database, *, create: bool = True) -> None:
    """Go on only with the schema this postdesk needs; with ``create``, a brand-new empty
    database gets it (the daemon's and the pipe's first start). Anything else stops with the
    advice to upgrade, as a ConfigError: the admin's to fix, never a traceback."""
    current = current_revision(db)
    head = head_revision(db)
    if current == head:
        return
    with db.connect() as conn:
        empty = not inspect(conn).get_table_names()
    if create and current is None and empty:
        upgrade(db)
        return
    found = "has no postdesk schema" if current is None else f"schema is at revision {current}"
    raise ConfigError(
        f"database {found} but this postdesk needs {head}: "
        "run `postdesk db upgrade` (back up the database first)"
    )
