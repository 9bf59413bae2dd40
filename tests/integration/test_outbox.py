"""The relay goes down for a while and comes back: every queued mail is delivered once, and
a ticket's mails arrive in the order they were queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.runners.sender import deliver_due
from postdesk.store.models import Outbox
from postdesk.store.schema import ensure_current
from tests.conftest import Sink
from tests.helpers import free_port, mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TICKETS = 3


def test_relay_down_then_back_delivers_each_mail_once_in_order_per_ticket(
    write_config: Callable[..., Path], database_url: str
) -> None:
    port = free_port()
    config = write_config(
        database=database_url,
        outgoing={"smtp": {"host": "127.0.0.1", "port": port}, "retry_base": "30s"},
        notify={"new_ticket": True, "customer_reply": False},
    )
    app = App.open(str(config))
    ensure_current(app.db)
    try:
        for i in range(TICKETS):
            message = mail(sender=f"customer{i}@example.org", subject=f"Question {i}")
            assert ingest(app, message.as_bytes(), "smtp", NOW).outcome == "ticket_created"
        with app.db.transaction() as session:
            queued = [(r.ticket_id, r.message_id) for r in session.scalars(select(Outbox))]
        assert len(queued) == 2 * TICKETS  # an acknowledgement and an agent notice each

        down = deliver_due(app.db, app.settings, NOW)
        assert (down.sent, down.retried) == (0, 1)  # the first refusal ends the run

        sink = Sink()
        relay = Controller(sink, hostname="127.0.0.1", port=port)
        relay.start()
        try:
            back = deliver_due(app.db, app.settings, NOW + timedelta(seconds=5))
            # the first ticket's notice waits for its deferred acknowledgement
            assert back.sent == 2 * TICKETS - 2
            later = deliver_due(app.db, app.settings, NOW + timedelta(hours=1))
            assert later.sent == 2
            assert deliver_due(app.db, app.settings, NOW + timedelta(days=1)).sent == 0
            arrived = [str(m["Message-ID"]).strip("<>") for m in sink.wait_for(2 * TICKETS)]
        finally:
            relay.stop()
    finally:
        app.db.dispose()
    assert sorted(arrived) == sorted(mid for _, mid in queued)  # each once, none lost
    for ticket_id in {t for t, _ in queued}:
        in_queue = [mid for t, mid in queued if t == ticket_id]
        assert [mid for mid in arrived if mid in in_queue] == in_queue
