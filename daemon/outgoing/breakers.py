"""Where the circuit breakers on outgoing mail stand, for `postdesk status` and the metrics
(section 9: a breaker that tripped must show somewhere besides the one alert)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import CUSTOMER_AUTOMATIC, STAFF
from postdesk.store import suppressions


def breakers(app: App, session: Session, now: datetime) -> dict[str, Any]:
    """The breaker on automatic mail to customers (acknowledgements stop), the staff one,
    and the senders whose own breaker holds."""
    settings = app.settings
    return {
        "customer": suppressions.breaker(
            session, now, CUSTOMER_AUTOMATIC, settings.autoreply.circuit_breaker_per_hour
        ),
        "staff": suppressions.breaker(session, now, STAFF, settings.notify.staff_breaker_per_hour),
        "senders": suppressions.tripped_senders(session, now),
    }
