"""The ticket state machine: which status changes exist and what each one stamps.

new -> open -> pending -> resolved -> closed, and on_hold beside them. A ticket may be moved
by an agent to any state but ``new``; the timestamps that reports and the timed sweeps rely
on are set here, and only here.
"""

from __future__ import annotations

from datetime import datetime

from postdesk.store.models import Ticket

STATES = ("new", "open", "pending", "on_hold", "resolved", "closed")
COMMANDS = {
    "open": "open",
    "pending": "pending",
    "hold": "on_hold",
    "resolve": "resolved",
    "close": "closed",
}


def move(ticket: Ticket, status: str, now: datetime, reminder_at: datetime | None = None) -> str:
    """Set the status; returns the previous one. Reopening clears the end stamps; entering
    ``pending`` starts the reminder cycle at ``reminder_at``, leaving it stops the cycle."""
    if status not in STATES or status == "new":
        raise ValueError(f"no such target status: {status!r}")
    before = ticket.status
    ticket.status = status
    ticket.updated_at = now
    ticket.next_reminder_at = reminder_at if status == "pending" else None
    if status == "pending" and before != "pending":
        ticket.reminders_sent = 0
    if status == "resolved":
        ticket.resolved_at = ticket.resolved_at or now
    elif status == "closed":
        ticket.resolved_at = ticket.resolved_at or now
        ticket.closed_at = now
    elif before in ("resolved", "closed"):
        ticket.resolved_at = ticket.closed_at = None
    return before
