"""What a person watching `postdesk ingest` of many files on a terminal sees: one line
rewritten in place (count, rate, time left), then a one-line summary.

The line is drawn with the cursor left at its start, so a log line (a warning) written
meanwhile covers it and the next drawing goes below.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(
        self, total: int, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.outcomes: Counter[str] = Counter()

    def done(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def show(self) -> None:
        count = sum(self.outcomes.values())
        rate = self._rate(count)
        left = (self.total - count) / rate if rate else 0.0
        self.stream.write(
            f"\x1b[K{count}/{self.total} messages, {rate:.0f}/s, {_duration(left)} left\r"
        )
        self.stream.flush()

    def summary(self) -> None:
        count = sum(self.outcomes.values())
        elapsed = self.clock() - self.started
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items()))
        self.stream.write(
            f"\x1b[K{count} messages in {_duration(elapsed)} ({self._rate(count):.0f}/s): "
            f"{counts or 'none'}\n"
        )
        self.stream.flush()

    def _rate(self, count: int) -> float:
        elapsed = self.clock() - self.started
        return count / elapsed if elapsed > 0 else 0.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{secs} s"
