"""Prometheus metrics on `metrics.listen`.

`postdesk_ingested` counts what this process ingested; everything else is read from the
database on each scrape, so every instance sharing a database reports the same tickets,
outbox and SLA state, and `postdesk_received{source,status}` counts the mail that every
process took, pipe-fed `postdesk ingest` runs included (they end before any scrape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
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
from postdesk.daemon.outgoing.breakers import breakers
from postdesk.daemon.runners.transports import transport_name
from postdesk.store import gauges, relay
from postdesk.store.inbound import counts as inbound_counts
from postdesk.store.inbound import counts_by_source
from postdesk.store.mailboxes import health as mailbox_health
from postdesk.store.outbox import oldest_queued
from postdesk.store.outbox import summary as outbox_summary


class ProcessCollector(Collector):
    """This process's own counts (``daemon/counters.py``), as they stand at the scrape."""

    def collect(self) -> Iterator[Metric]:
        for tally in (INGESTED, AUTOREPLY_DECISIONS, CONNECTIONS_REFUSED):
            if not tally.labels:
                yield CounterMetricFamily(tally.name, tally.documentation, value=tally.value())
                continue
            counter = CounterMetricFamily(tally.name, tally.documentation, labels=tally.labels)
            for values, n in sorted(tally.counts().items()):
                counter.add_metric(list(values), n)
            yield counter
        yield SummaryMetricFamily(
            SWEEP_SECONDS.name,
            SWEEP_SECONDS.documentation,
            count_value=SWEEP_SECONDS.count,
            sum_value=SWEEP_SECONDS.total,
        )


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
            received = counts_by_source(session)
            paused = relay.view(session, transport_name(self.app.settings), now)
            tripped = breakers(self.app, session, now)
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
        counter = CounterMetricFamily(
            "postdesk_received",
            "Messages received by every process on this database (the daemon, `postdesk "
            "ingest` pipes), by source and outcome",
            labels=["source", "status"],
        )
        for (source, status), n in sorted(received.items()):
            counter.add_metric([source, status], n)
        yield counter
        yield from _outbox_pause(paused, now)
        yield from _breaker_gauges(tripped, now)
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


def _outbox_pause(paused: dict[str, Any], now: datetime) -> Iterator[Metric]:
    """A relay fault pauses all delivery: alert on the pause, not on failed mail."""
    yield GaugeMetricFamily(
        "postdesk_outbox_paused",
        "1 while delivery is paused after a relay fault",
        value=1.0 if paused["paused"] else 0.0,
    )
    until = paused["paused_until"]
    yield GaugeMetricFamily(
        "postdesk_outbox_paused_seconds_left",
        "Seconds until the paused delivery is tried again (0 when not paused)",
        value=(datetime.fromisoformat(until) - now).total_seconds() if until else 0.0,
    )
    yield GaugeMetricFamily(
        "postdesk_outbox_relay_faults",
        "Relay faults in a row since the last delivery that went through",
        value=paused["relay_failures"],
    )


def _breaker_gauges(tripped: dict[str, Any], now: datetime) -> Iterator[Metric]:
    """The acknowledgement breaker (automatic mail to customers) and the staff one."""
    held = GaugeMetricFamily(
        "postdesk_breaker_tripped",
        "1 while a circuit breaker holds: acknowledgements (customer) or staff mail",
        labels=["breaker"],
    )
    left = GaugeMetricFamily(
        "postdesk_breaker_seconds_left",
        "Seconds until a tripped circuit breaker lets mail through again (0 when not tripped)",
        labels=["breaker"],
    )
    for name in ("customer", "staff"):
        state = tripped[name]
        held.add_metric([name], 1.0 if state["tripped"] else 0.0)
        until = state["until"]
        left.add_metric(
            [name], (datetime.fromisoformat(until) - now).total_seconds() if until else 0.0
        )
    yield from (held, left)
    yield GaugeMetricFamily(
        "postdesk_breaker_senders",
        "Senders whose own circuit breaker holds (no automatic mail to them for a day)",
        value=tripped["senders"]["count"],
    )


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
    registry.register(ProcessCollector())
    registry.register(StoreCollector(app))
    try:
        host, port = parse_host_port(listen)
        server, _ = start_http_server(port, host, registry=registry)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"metrics.listen: cannot listen on {listen}: {exc}") from exc
    return server
