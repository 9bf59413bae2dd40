"""Counts this process keeps (ingest outcomes, acknowledgement decisions, sweep time);
the Prometheus endpoint serves them beside the gauges it reads from the database."""

from __future__ import annotations

from prometheus_client import Counter, Summary

SWEEP_SECONDS = Summary(
    "postdesk_sweep_seconds", "Duration of the timed sweeps of this process", registry=None
)


INGESTED = Counter(
    "postdesk_ingested", "Messages ingested by this process", ["source", "outcome"], registry=None
)


AUTOREPLY_DECISIONS = Counter(
    "postdesk_autoreplies",
    "Acknowledgement decisions of this process: sent, suppressed by rules or by the policy",
    ["decision"],
    registry=None,
)


CONNECTIONS_REFUSED = Counter(
    "postdesk_connections_refused",
    "SMTP/LMTP connections of this process refused with 421: a connection limit was reached",
    registry=None,
)
