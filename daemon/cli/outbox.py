"""`outbox list|show|retry`: outgoing mail, why it waits or failed, and putting it back."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postdesk.daemon import clock
from postdesk.daemon.cli.common import emit, open_app
from postdesk.daemon.errors import EX_DATAERR, EX_OK, EX_USAGE
from postdesk.daemon.runners.transports import transport_name
from postdesk.store import outbox, relay
from postdesk.store.models import Outbox, Ticket

ATTENTION = (outbox.QUEUED, outbox.FAILED)
"""What `outbox list` shows without --status: mail that has not left."""


def cmd_outbox_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    statuses = (args.status,) if args.status else ATTENTION
    with app.db.transaction() as session:
        numbers = _numbers(session)
        data = [_view(row, numbers) for row in outbox.rows(session, statuses, args.limit)]
    emit(
        args,
        data,
        lambda rows: (
            "\n".join(
                f"{r['id']:>6} {r['status']:<6} {r['kind']:<12} {','.join(r['recipients']):<30} "
                f"tries {r['attempts']:<3} {r['last_error'] or r['next_attempt_at']}"
                for r in rows
            )
            or "no outgoing mail in " + "/".join(statuses)
        ),
    )
    return EX_OK


def cmd_outbox_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    now = clock.now()
    with app.db.transaction() as session:
        row = session.get(Outbox, args.id)
        if row is None:
            print(f"no outgoing mail {args.id}", file=sys.stderr)
            return EX_DATAERR
        data = _view(row, _numbers(session, row.ticket_id))
        headers = BytesHeaderParser(policy=default).parsebytes(bytes(row.content))
        data["subject"] = str(headers.get("Subject", ""))
        data["waits_for"] = _why_waiting(session, row, transport_name(app.settings), now)
    emit(args, data, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))
    return EX_OK


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    """Back in the queue with a fresh count of attempts; a relay pause ends too, since an
    admin who retries has just fixed what stopped the mail."""
    if (args.id is None) == (not args.failed):
        print("postdesk: outbox retry needs either ID or --failed", file=sys.stderr)
        return EX_USAGE
    app = open_app(args)
    with app.db.transaction() as session:
        if args.id is not None:
            row = session.get(Outbox, args.id)
            if row is None or row.status != outbox.FAILED:
                what = f"is {row.status}" if row else "does not exist"
                print(f"outgoing mail {args.id} {what}, not failed", file=sys.stderr)
                return EX_DATAERR
        requeued = outbox.retry(session, clock.now(), args.id)
        lifted = relay.lift(session, transport_name(app.settings))
    print(json.dumps({"requeued": requeued, "pause_lifted": lifted}))
    return EX_OK


def _numbers(session: Session, ticket_id: int | None = None) -> dict[int, int]:
    """Ticket numbers by id, as the CLI speaks of numbers (one ticket's, or all)."""
    query = select(Ticket.id, Ticket.number)
    if ticket_id is not None:
        query = query.where(Ticket.id == ticket_id)
    return {tid: number for tid, number in session.execute(query)}


def _view(row: Outbox, numbers: dict[int, int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket": numbers.get(row.ticket_id) if row.ticket_id else None,
        "kind": row.kind,
        "status": row.status,
        "sender": row.sender,
        "recipients": list(row.recipients),
        "message_id": row.message_id,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "last_error": row.last_error,
        "claimed_by": row.claimed_by,
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def _why_waiting(session: Session, row: Outbox, transport: str, now: datetime) -> str:
    if row.status != outbox.QUEUED:
        return ""
    pause = relay.paused(session, transport, now)
    if pause is not None and pause.paused_until is not None:
        return f"relay paused until {pause.paused_until.isoformat()}: {pause.last_error}"
    earlier = outbox.waiting_for(session, row)
    if earlier is not None:
        return f"earlier mail {earlier} of the same ticket"
    if row.claimed_by and row.next_attempt_at > now:
        return f"being sent by {row.claimed_by} (claim ends {row.next_attempt_at.isoformat()})"
    if row.next_attempt_at > now:
        return f"next try at {row.next_attempt_at.isoformat()}"
    return "due now"
