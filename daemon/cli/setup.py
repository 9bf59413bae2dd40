"""`check-config`, `db upgrade`, `init`: setting an installation up."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from postdesk.config.loader import EXAMPLE_DIR
from postdesk.daemon.checks import cross_references
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_CONFIG, EX_OK
from postdesk.store.schema import upgrade


def cmd_check_config(args: argparse.Namespace) -> int:
    app = open_app(args, schema=False)
    playbook = app.playbook
    config = Path(app.config_path) if app.config_path else None
    problems = cross_references(app.settings, config) + playbook.templates.check()
    for brand in playbook.brand_templates.values():
        problems += [p for p in brand.check() if p not in problems]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EX_CONFIG
    rules = len(app.playbook.rules.rules)
    print(f"configuration OK: {rules} rules, database {app.settings.database_url}")
    return EX_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    before, after = upgrade(open_app(args, schema=False).db)
    print(f"database schema: {before or 'empty'} -> {after}")
    return EX_OK


STARTER_FILES = ("config.yaml", "rules.yaml", "postdesk.env")
SECRETS_FILE = "postdesk.env"
DATA_DIR_LINE = re.compile(r"^data_dir: data *", re.MULTILINE)


def cmd_init(args: argparse.Namespace) -> int:
    """The example configuration, with ``data_dir`` made absolute when ``--data-dir`` is given
    (a service keeps its data under /var/lib, not beside its read-only configuration). The
    secrets file is made 0640 and takes the folder's group, so the service user reads it."""
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in STARTER_FILES:
        dest = target / name
        if dest.exists():
            print(f"{dest} exists, left as it is", file=sys.stderr)
            continue
        text = (EXAMPLE_DIR / name).read_text(encoding="utf-8")
        if name == "config.yaml" and args.data_dir:
            text = _with_data_dir(text, Path(args.data_dir).absolute())
        dest.write_text(text, encoding="utf-8")
        if name == SECRETS_FILE:
            dest.chmod(0o640)
            os.chown(dest, -1, target.stat().st_gid)
        written.append(str(dest))
    print("\n".join(written) or "nothing written")
    return EX_OK


def _with_data_dir(text: str, data_dir: Path) -> str:
    """The example's one ``data_dir`` line with another folder, its comment kept."""
    text, found = DATA_DIR_LINE.subn(f"data_dir: {data_dir}  ", text)
    assert found == 1, "the example config.yaml has one `data_dir: data` line"
    return text
