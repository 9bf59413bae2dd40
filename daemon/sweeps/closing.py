"""Closing a ticket on a timer: the closing notice with the satisfaction survey."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from sqlalchemy.orm import Session

from postdesk.autoreplies.render import Rendered
from postdesk.daemon import ticket_state
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import send_to_customer
from postdesk.daemon.sweeps.stats import SweepStats
from postdesk.parsers.references import make_survey_token
from postdesk.store.models import Ticket
from postdesk.store.tickets import add_event

SCALES = {
    "good_bad": {"en": [("Good", 5), ("Bad", 1)], "ru": [("Хорошо", 5), ("Плохо", 1)]},
    "1-5": {lang: [(str(n), n) for n in (5, 4, 3, 2, 1)] for lang in ("en", "ru")},
}


def close(
    app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats, why: str
) -> None:
    ticket_state.close(app, ticket, now)
    survey = survey_links(app, ticket) if app.settings.survey.enabled else []
    rendered = render_ticket_mail(app, ticket, "closed", {"survey": survey})
    send_to_customer(app, session, ticket, rendered, "survey" if survey else "notification", now)
    add_event(ticket, actor="postdesk", type="auto_closed", now=now, reason=why)
    stats.closed += 1


def survey_links(app: App, ticket: Ticket) -> list[dict[str, str]]:
    """One mailto link per answer: the address carries the signed ticket and score."""
    local, _, domain = app.settings.support_addresses[0].rpartition("@")
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


def render_ticket_mail(app: App, ticket: Ticket, name: str, extra: dict[str, object]) -> Rendered:
    variables = {
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "priority": ticket.priority,
            "queue": ticket.queue,
        },
        "customer_name": "",
        "support_address": app.settings.support_addresses[0],
        **extra,
    }
    return app.playbook.templates.render(name, ticket.language, variables)
