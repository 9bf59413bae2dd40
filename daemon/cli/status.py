"""`status`: database, intake, outbox (with a relay pause), breakers, listeners, mailboxes."""

from __future__ import annotations

import argparse
import json

from postdesk.daemon import clock
from postdesk.daemon.cli.common import emit, open_app
from postdesk.daemon.errors import EX_OK
from postdesk.daemon.outgoing.breakers import breakers
from postdesk.daemon.runners.transports import transport_name
from postdesk.store import relay
from postdesk.store.inbound import counts, counts_by_source
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
    now = clock.now()
    with app.db.transaction() as session:
        oldest = oldest_queued(session)
        data = {
            "database": database,
            "inbound": counts(session),
            "inbound_by_source": _by_source(counts_by_source(session)),
            "outbox": {
                **outbox_summary(session),
                "oldest_queued": oldest.isoformat() if oldest else None,
            },
            "relay": relay.view(session, transport_name(app.settings), now),
            "breakers": breakers(app, session, now),
            "listen": app.settings.listen.model_dump(mode="json"),
            "mailboxes": mailbox_health(session, [m.name for m in app.settings.mailboxes], now),
        }
    emit(args, data, lambda d: json.dumps(d, indent=2))
    return EX_OK


def _by_source(found: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for (source, status), n in sorted(found.items()):
        nested.setdefault(source, {})[status] = n
    return nested
