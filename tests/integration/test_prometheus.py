"""`metrics.listen`: ingest counts from this process, tickets, outbox and SLA state read from
the database at scrape time."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from postdesk.config.errors import ConfigError
from postdesk.daemon import counters
from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.runners import prometheus
from postdesk.store.models import MailboxState
from postdesk.store.schema import ensure_current
from tests.helpers import free_port, mail
from tests.integration.test_report import at, history

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(families: Iterable[Metric]) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families
        for s in family.samples
    }


def test_collector_counts_the_week(app: App) -> None:
    history(app)
    found = samples(prometheus.StoreCollector(app, lambda: at(23)).collect())
    assert found["postdesk_tickets", (("queue", "ops"), ("status", "open"))] == 1  # T3
    assert found["postdesk_tickets", (("queue", "ops"), ("status", "new"))] == 1  # T4
    assert found["postdesk_tickets", (("queue", "general"), ("status", "closed"))] == 2
    assert found["postdesk_outbox", (("status", "sent"),)] == 3  # three surveys
    assert found["postdesk_outbox", (("status", "queued"),)] == 0
    assert found["postdesk_outbox_oldest_queued_seconds", ()] == 0
    # on the 23rd: T4 never answered; T3 resolution was due on the 20th (T7 is resolved)
    assert found["postdesk_tickets_past_sla", (("target", "first_response"),)] == 1
    assert found["postdesk_tickets_past_sla", (("target", "resolution"),)] == 1


def test_exporter_serves_ingest_counts(app: App) -> None:
    before = counters.INGESTED.value("smtp", "ticket_created")
    sent_before = counters.AUTOREPLY_DECISIONS.value("sent")
    assert ingest(app, mail().as_bytes(), "smtp", at(23, 10)).outcome == "ticket_created"
    port = free_port()
    server = prometheus.start(app, f"127.0.0.1:{port}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            found = samples(text_string_to_metric_families(response.read().decode()))
    finally:
        server.shutdown()
        server.server_close()
    key = (("outcome", "ticket_created"), ("source", "smtp"))
    assert found["postdesk_ingested_total", key] == before + 1
    assert found["postdesk_autoreplies_total", (("decision", "sent"),)] == sent_before + 1
    assert sum(v for (name, _), v in found.items() if name == "postdesk_tickets") == 1


def test_process_counts_are_served_as_counters_and_a_summary() -> None:
    before = samples(prometheus.ProcessCollector().collect())
    counters.CONNECTIONS_REFUSED.inc()
    with counters.SWEEP_SECONDS.time():
        pass
    found = samples(prometheus.ProcessCollector().collect())
    refused = ("postdesk_connections_refused_total", ())
    assert found[refused] == before[refused] + 1
    sweeps = ("postdesk_sweep_seconds_count", ())
    assert found[sweeps] == before[sweeps] + 1
    assert found["postdesk_sweep_seconds_sum", ()] >= before["postdesk_sweep_seconds_sum", ()]


def test_bad_listen_address_is_a_config_error(app: App) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        prometheus.start(app, "nowhere")


def test_mailbox_health_gauges(write_config: Callable[..., Path], database_url: str) -> None:
    mailbox = {
        "name": "support",
        "host": "imap.example.com",
        "username": "u",
        "password_env": "HOME",
    }
    app = App.open(str(write_config(database=database_url, mailboxes=[mailbox])))
    ensure_current(app.db)
    now = at(23, 10)
    with app.db.transaction() as session:
        session.add(
            MailboxState(
                name="support",
                last_uid=7,
                connected=True,
                backlog=3,
                last_error="",
                lease_holder="host-1",
                lease_expires_at=now + timedelta(seconds=60),
                last_success_at=now - timedelta(seconds=90),
            )
        )
    found = samples(prometheus.StoreCollector(app, lambda: now).collect())
    app.db.dispose()
    assert found["postdesk_mailbox_connected", (("mailbox", "support"),)] == 1
    assert found["postdesk_mailbox_backlog", (("mailbox", "support"),)] == 3
    assert found["postdesk_mailbox_last_success_age_seconds", (("mailbox", "support"),)] == 90
