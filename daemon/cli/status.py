"""`status`: database, intake, outbox, listeners and mailboxes."""

from __future__ import annotations

import argparse
import json

from postdesk.daemon import clock
from postdesk.daemon.cli.common import emit, open_app
from postdesk.daemon.errors import EX_OK
from postdesk.store.inbound import counts
from postdesk.store.mailboxes import health as mailbox_health
from postdesk.store.outbox import oldest_queued
from postdesk.store.outbox import summary as outbox_summary
from postdesk.store.schema import current_revision, head_revision


def cmd_status(args: argparse.Namespace) -> int:
    app = open_app(args)
    database = {
        "url": app.db.engine.url.render_as_string(),
        "schema": current_revision(app.db),
        "schema_expected": head_revision(app.db),
    }
    with app.db.transaction() as session:
        oldest = oldest_queued(session)
        data = {
            "database": database,
            "inbound": counts(session),
            "outbox": {
                **outbox_summary(session),
                "oldest_queued": oldest.isoformat() if oldest else None,
            },
            "listen": app.settings.listen.model_dump(mode="json"),
            "mailboxes": mailbox_health(
                session, [m.name for m in app.settings.mailboxes], clock.now()
            ),
        }
    emit(args, data, lambda d: json.dumps(d, indent=2))
    return EX_OK
