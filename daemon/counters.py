"""Counts this process keeps (ingest outcomes, acknowledgement decisions, sweep time);
the Prometheus endpoint serves them beside the gauges it reads from the database.

They are plain numbers, not prometheus_client metrics: a process that serves no metrics
(a pipe-fed `postdesk ingest`) would otherwise import that library, its HTTP server
included, for every message it takes. The endpoint turns them into samples at each scrape.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class Tally:
    """A count per combination of label values, safe to bump from several threads."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self._counts: Counter[tuple[str, ...]] = Counter()
        self._lock = threading.Lock()

    def inc(self, *values: str) -> None:
        with self._lock:
            self._counts[values] += 1

    def value(self, *values: str) -> int:
        return self._counts[values]

    def counts(self) -> dict[tuple[str, ...], int]:
        with self._lock:
            return dict(self._counts)


class Timing:
    """How many times something ran and how long it took in all, in seconds."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.count = 0
        self.total = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def time(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.count += 1
                self.total += time.perf_counter() - started


SWEEP_SECONDS = Timing("postdesk_sweep_seconds", "Duration of the timed sweeps of this process")


INGESTED = Tally("postdesk_ingested", "Messages ingested by this process", ("source", "outcome"))


AUTOREPLY_DECISIONS = Tally(
    "postdesk_autoreplies",
    "Acknowledgement decisions of this process: sent, suppressed by rules or by the policy",
    ("decision",),
)


CONNECTIONS_REFUSED = Tally(
    "postdesk_connections_refused",
    "SMTP/LMTP connections of this process refused with 421: a connection limit was reached",
)
