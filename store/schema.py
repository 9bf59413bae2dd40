"""Schema versions: apply Alembic migrations and refuse to run on an old schema.

Alembic (with Mako and Pygments behind it) costs a pipe delivery more start-up than the
message itself, so the check every command makes reads the stored revision with one plain
query and compares it with ``HEAD``; Alembic is imported only when the two differ or a
migration is asked for. A test holds ``HEAD`` to the newest migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect

from postdesk.config.errors import ConfigError
from postdesk.store.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0013"
"""The revision of the newest migration in ``migrations/versions``."""


def _alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision(db: Database) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(db)).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(db)
    cfg = _alembic_config(db)
    with db.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision(db)


def is_current(db: Database) -> bool:
    """Whether the database says it is at ``HEAD``, asked without Alembic; a database with
    no version table (new, or not postdesk's) is not."""
    with db.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return [row[0] for row in found] == [HEAD]


def ensure_current(db: Database, *, create: bool = True) -> None:
    """Go on only with the schema this postdesk needs; with ``create``, a brand-new empty
    database gets it (the daemon's and the pipe's first start). Anything else stops with the
    advice to upgrade, as a ConfigError: the admin's to fix, never a traceback."""
    if is_current(db):
        return
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
