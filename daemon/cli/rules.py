"""`rules test` and `rules replay`: the routing rules tried on saved mail."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from postdesk.daemon.cli.common import open_app
from postdesk.daemon.errors import EX_OK
from postdesk.parsers import parse
from postdesk.rules.engine import evaluate
from postdesk.rules.explain import explain, explain_json, replay
from postdesk.rules.loader import load_rules


def cmd_rules_test(args: argparse.Namespace) -> int:
    app = open_app(args, schema=False)
    msg = parse(Path(args.file).read_bytes(), app.parse_context(keep_attachments=False))
    decision = evaluate(app.playbook.rules, msg, explain=True)
    if args.json:
        print(json.dumps(explain_json(msg, decision), ensure_ascii=False, indent=2))
    else:
        print(explain(msg, decision))
    return EX_OK


def cmd_rules_replay(args: argparse.Namespace) -> int:
    app = open_app(args, schema=False)
    new = app.playbook.rules
    settings = app.settings
    old = (
        load_rules(
            Path(args.against),
            queues={q.name for q in settings.queues},
            templates=app.playbook.templates.names(),
            agents=set(settings.agent_addresses),
        )
        if args.against
        else new
    )
    ctx = app.parse_context(keep_attachments=False)
    changed = 0
    files = sorted(p for p in Path(args.dir).rglob("*") if p.is_file())
    for seen in replay(files, old, new, ctx):
        if seen.refused:
            print(f"{seen.path}: not a ticket: {seen.refused}")
        elif seen.changes:
            changed += 1
            changes = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in seen.changes.items())
            print(f"{seen.path}: {changes}")
    print(f"{changed} of {len(files)} messages would be routed differently")
    return EX_OK
