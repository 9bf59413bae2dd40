"""What one sweep did, counted by kind: printed by `postdesk sweep`, logged by the daemon."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SweepStats:
    reminders: int = 0
    closed: int = 0
    sla_warnings: int = 0
    sla_breaches: int = 0
    digests: int = 0
    reports: int = 0
    failed: int = 0
    """Tickets (or whole steps: digest, report) a sweep failed on; retried later."""
