"""The closing notice, with the satisfaction survey when `survey.send_on` asks for one.

The survey needs no web server: each answer is a `mailto:` link whose address carries the
ticket and the score, signed. A ticket is surveyed once, however it was closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

from sqlalchemy.orm import Session

from postdesk.daemon.app import App
from postdesk.daemon.outgoing.addresses import ticket_address
from postdesk.daemon.outgoing.compose import render_ticket_mail, send_to_customer
from postdesk.parsers.references import make_survey_token
from postdesk.store import outbox
from postdesk.store.models import Ticket

Occasion = Literal["agent_close", "resolve", "auto_close"]

SCALES = {
    "good_bad": {"en": [("Good", 5), ("Bad", 1)], "ru": [("Хорошо", 5), ("Плохо", 1)]},
    "1-5": {lang: [(str(n), n) for n in (5, 4, 3, 2, 1)] for lang in ("en", "ru")},
    "nps": {lang: [(str(n), n) for n in range(10, -1, -1)] for lang in ("en", "ru")},
}


def send_closing_notice(
    app: App, session: Session, ticket: Ticket, now: datetime, *, survey: bool
) -> None:
    """The ticket is closed (or resolved): say so, with the survey's links if asked."""
    variables = {
        "survey": survey_links(app, ticket) if survey else [],
        "nps": app.settings.survey.scale == "nps",
        "resolved": ticket.status == "resolved",
    }
    rendered = render_ticket_mail(app, ticket, "closed", variables)
    send_to_customer(app, session, ticket, rendered, "survey" if survey else "notification", now)


def survey_due(app: App, session: Session, ticket: Ticket, occasion: Occasion) -> bool:
    """`survey.send_on` names the occasion and the ticket was never surveyed."""
    settings = app.settings.survey
    if not settings.enabled or occasion not in settings.send_on:
        return False
    return outbox.count_recent(session, ("survey",), ticket.created_at, ticket_id=ticket.id) == 0


def survey_links(app: App, ticket: Ticket) -> list[dict[str, str]]:
    """One mailto link per answer: the address carries the signed ticket and score."""
    local, _, domain = ticket_address(app, ticket).rpartition("@")
    choices = SCALES[app.settings.survey.scale][
        ticket.language if ticket.language == "ru" else "en"
    ]
    subject = quote(f"[#{ticket.number}] survey")
    return [
        {
            "label": label,
            "link": f"mailto:{local}+{make_survey_token(app.secret, ticket.id, score)}@{domain}"
            f"?subject={subject}",
        }
        for label, score in choices
    ]
