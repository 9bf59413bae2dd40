"""`quarantine list|show|release`: mail that could not become a ticket."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.orm import Session

from postdesk.daemon.cli.common import emit, open_app
from postdesk.daemon.errors import EX_DATAERR, EX_OK
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.pipeline.result import RELEASED
from postdesk.store.inbound import forget_quarantined, get_quarantined, quarantined, row_view
from postdesk.store.models import Inbound


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.db.transaction() as session:
        rows = [row_view(r) for r in quarantined(session)]
    emit(
        args,
        rows,
        lambda rs: (
            "\n".join(
                f"{r['id']:>6} {r['received_at']} {r['from'] or '-':<30} {r['reason']}" for r in rs
            )
            or "quarantine is empty"
        ),
    )
    return EX_OK


def cmd_quarantine_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.db.transaction() as session:
        row = _quarantined(session, args.id)
        if row is None:
            return EX_DATAERR
        data = row_view(row)
    raw = app.raw.get(data["sha256"])
    data["raw_path"] = app.raw.location(data["sha256"])
    emit(
        args,
        data,
        lambda d: (
            "\n".join(f"{k}: {v}" for k, v in d.items())
            + "\n\n"
            + raw[:4000].decode("utf-8", "replace")
        ),
    )
    return EX_OK


def cmd_quarantine_release(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.db.transaction() as session:
        row = _quarantined(session, args.id)
        if row is None:
            return EX_DATAERR
        sha256 = row.sha256
        forget_quarantined(session, row)
    result = ingest(app, app.raw.get(sha256), RELEASED)
    print(
        json.dumps(
            {"outcome": result.outcome, "ticket": result.ticket_number, "reason": result.reason}
        )
    )
    return EX_OK


def _quarantined(session: Session, row_id: int) -> Inbound | None:
    """The quarantined row, or None after telling the user there is no such message."""
    row = get_quarantined(session, row_id)
    if row is None:
        print(f"no quarantined message {row_id}", file=sys.stderr)
    return row
