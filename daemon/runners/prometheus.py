"""Prometheus metrics on `metrics.listen`.

Ingest counts are kept by this process; everything else is read from the database on each
scrape, so every instance sharing a database reports the same tickets, outbox and SLA state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from postdesk.config.errors import ConfigError
from postdesk.config.schema import parse_host_port
from postdesk.daemon import clock
from postdesk.daemon.app import App
from postdesk.daemon.counters import (
    AUTOREPLY_DECISIONS,
    CONNECTIONS_REFUSED,
    INGESTED,
    SWEEP_SECONDS,
)
from postdesk.store import gauges
from postdesk.store.inbound import counts as inbound_counts
from postdesk.store.mailboxes import health as mailbox_health
from postdesk.store.outbox import oldest_queued
from postdesk.store.outbox import summary as outbox_summary


class StoreCollector(Collector):
    """Gauges computed by a few grouped queries at scrape time; nothing cached in memory."""

    def __init__(self, app: App, now: Callable[[], datetime] = clock.now) -> None:
        self.app = app
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        with self.app.db.transaction() as session:
            tickets = gauges.tickets_by_status(session)
            outbox = outbox_summary(session)
            oldest = oldest_queued(session)
            inbound = inbound_counts(session)
            late = gauges.past_sla(session, now)
            flags = gauges.sla_events(session)
            mailboxes = mailbox_health(session, [m.name for m in self.app.settings.mailboxes], now)
        gauge = GaugeMetricFamily(
            "postdesk_tickets", "Tickets by status and queue", labels=["status", "queue"]
        )
        for (status, queue), n in sorted(tickets.items()):
            gauge.add_metric([status, queue], n)
        yield gauge
        gauge = GaugeMetricFamily(
            "postdesk_outbox",
            "Outgoing mail: queued is the backlog, failed gave up",
            labels=["status"],
        )
        for status, n in sorted(outbox.items()):
            gauge.add_metric([status], n)
        yield gauge
        yield GaugeMetricFamily(
            "postdesk_outbox_oldest_queued_seconds",
            "Age of the oldest undelivered mail (0 when none): a stuck outbox grows this",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        gauge = GaugeMetricFamily(
            "postdesk_inbound", "Received messages by outcome", labels=["status"]
        )
        for status, n in sorted(inbound.items()):
            gauge.add_metric([status], n)
        yield gauge
        gauge = GaugeMetricFamily(
            "postdesk_tickets_past_sla", "Unfinished tickets past an SLA target", labels=["target"]
        )
        for target, n in late.items():
            gauge.add_metric([target], n)
        yield gauge
        counter = CounterMetricFamily(
            "postdesk_sla_events", "SLA warnings and breaches raised", labels=["flag"]
        )
        for flag, n in sorted(flags.items()):
            counter.add_metric([flag], n)
        yield counter
        yield from _mailbox_gauges(mailboxes, now)


def _mailbox_gauges(mailboxes: list[dict[str, Any]], now: datetime) -> Iterator[Metric]:
    """IMAP health per mailbox: the alerting rule "has mail, fetched nothing" needs these."""
    connected = GaugeMetricFamily(
        "postdesk_mailbox_connected", "1 while a poller holds the mailbox", labels=["mailbox"]
    )
    backlog = GaugeMetricFamily(
        "postdesk_mailbox_backlog", "Messages waiting in the mailbox", labels=["mailbox"]
    )
    since = GaugeMetricFamily(
        "postdesk_mailbox_last_success_age_seconds",
        "Seconds since the last successful poll",
        labels=["mailbox"],
    )
    for box in mailboxes:
        connected.add_metric([box["name"]], 1.0 if box["connected"] else 0.0)
        if box["backlog"] is not None:
            backlog.add_metric([box["name"]], box["backlog"])
        if box["last_success"]:
            age = now - datetime.fromisoformat(box["last_success"])
            since.add_metric([box["name"]], age.total_seconds())
    yield from (connected, backlog, since)


def start(app: App, listen: str) -> WSGIServer:
    """Serve /metrics on ``listen`` (host:port) from a thread until shut down."""
    registry = CollectorRegistry()
    registry.register(INGESTED)
    registry.register(AUTOREPLY_DECISIONS)
    registry.register(SWEEP_SECONDS)
    registry.register(CONNECTIONS_REFUSED)
    registry.register(StoreCollector(app))
    try:
        host, port = parse_host_port(listen)
        server, _ = start_http_server(port, host, registry=registry)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"metrics.listen: cannot listen on {listen}: {exc}") from exc
    return server
