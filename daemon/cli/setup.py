"""`check-config`, `db upgrade`, `init`: setting an installation up."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from postdesk.config.loader import EXAMPLE_DIR
from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_CONFIG, EX_OK
from postdesk.store.schema import upgrade


def cmd_check_config(args: argparse.Namespace) -> int:
    app = open_app(args, schema=False)
    playbook = app.playbook
    problems = [*playbook.templates.check()]
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


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("config.yaml", "rules.yaml"):
        dest = target / name
        if dest.exists():
            print(f"{dest} exists, left as it is", file=sys.stderr)
            continue
        shutil.copyfile(EXAMPLE_DIR / name, dest)
        written.append(str(dest))
    print("\n".join(written) or "nothing written")
    return EX_OK
