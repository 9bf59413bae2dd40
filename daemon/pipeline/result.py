"""What ingest tells its caller, and the inbound row every step settles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from postdesk.store import inbound as received_rows
from postdesk.store.models import Ticket

CREATED, APPENDED, DUPLICATE = "ticket_created", "appended", "duplicate"


QUARANTINED, SUPPRESSED = "quarantined", "suppressed"


RELEASED = "release"
"""The source of a message released from the quarantine by the admin: the rules' spam
action is skipped for it, since the release says it is not spam."""


@dataclass(frozen=True)
class IngestResult:
    outcome: str
    ticket_number: int | None = None
    reason: str = ""
    queued_mail: int = 0


SAME_BYTES = IngestResult(DUPLICATE, reason="same bytes already received")


@dataclass(frozen=True)
class Received:
    """The inbound row of the message being processed."""

    id: int
    source: str


def finish(
    session: Session, inbound: Received, status: str, reason: str, ticket: Ticket | None
) -> IngestResult:
    received_rows.settle(session, inbound.id, status, reason, ticket.id if ticket else None)
    return IngestResult(status, ticket.number if ticket else None, reason)
