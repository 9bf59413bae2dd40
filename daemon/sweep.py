"""Timed work, run by the scheduler every minute and by `postdesk sweep --now`.

Each kind of work reads only rows whose indexed due time has passed, claims them, acts, and
moves their due time on, all in one transaction with the mail it queues. Run twice for the
same moment, a sweep does nothing the second time; run by two daemons at once, each row is
handled by one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from urllib.parse import quote

from sqlalchemy.orm import Session

from postdesk.autoreplies.render import Rendered
from postdesk.daemon import report, sla
from postdesk.daemon.app import App
from postdesk.daemon.mail import queue_internal, queue_notice, send_to_customer
from postdesk.parsers.references import make_survey_token
from postdesk.store import sweeps
from postdesk.store.lifecycle import move
from postdesk.store.models import Ticket
from postdesk.store.temperature import temperature
from postdesk.store.tickets import add_event

log = logging.getLogger("postdesk.sweep")
BATCH = 200
SCALES = {
    "good_bad": {"en": [("Good", 5), ("Bad", 1)], "ru": [("Хорошо", 5), ("Плохо", 1)]},
    "1-5": {lang: [(str(n), n) for n in (5, 4, 3, 2, 1)] for lang in ("en", "ru")},
}
URGENT_FIRST = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


@dataclass
class SweepStats:
    reminders: int = 0
    closed: int = 0
    sla_warnings: int = 0
    sla_breaches: int = 0
    digests: int = 0
    reports: int = 0


def run(app: App, now: datetime) -> SweepStats:
    stats = SweepStats()
    lifecycle = app.settings.lifecycle
    _drain(
        app,
        lambda s: sweeps.due_reminders(s, now, BATCH),
        lambda s, t: _remind(app, s, t, now, stats),
    )
    _drain(
        app,
        lambda s: sweeps.due_closures(s, now - lifecycle.close_resolved_after, BATCH),
        lambda s, t: _close(
            app, s, t, now, stats, f"resolved ticket closed after {lifecycle.close_resolved_after}"
        ),
    )
    _drain(
        app, lambda s: sweeps.due_sla(s, now, BATCH), lambda s, t: _check_sla(app, s, t, now, stats)
    )
    _digest(app, now, stats)
    _weekly_report(app, now, stats)
    if any(asdict(stats).values()):
        log.info("sweep done", extra=asdict(stats))
    return stats


def _drain(
    app: App,
    claim: Callable[[Session], Sequence[Ticket]],
    act: Callable[[Session, Ticket], None],
) -> None:
    """Claim and handle batches until nothing is due; every act moves its row's due time."""
    while True:
        with app.db.transaction() as session:
            rows = claim(session)
            for ticket in rows:
                act(session, ticket)
        if len(rows) < BATCH:
            return


def _remind(app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats) -> None:
    total = app.settings.lifecycle.max_reminders
    if ticket.reminders_sent >= total:
        _close(app, session, ticket, now, stats, f"no answer to {total} reminders")
        return
    number = ticket.reminders_sent + 1
    last = next((m.body for m in reversed(ticket.messages) if m.kind == "agent"), "")
    variables = {"number": number, "total": total, "final": number == total, "last_answer": last}
    send_to_customer(
        app, session, ticket, _render(app, ticket, "reminder", variables), "reminder", now
    )
    ticket.reminders_sent = number
    ticket.next_reminder_at = app.reminder_at(ticket, now)
    add_event(ticket, actor="postdesk", type="reminder", now=now, number=number)
    stats.reminders += 1


def _close(
    app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats, why: str
) -> None:
    move(ticket, "closed", now)
    ticket.sla_check_at = None
    survey = _survey(app, ticket) if app.settings.survey.enabled else []
    rendered = _render(app, ticket, "closed", {"survey": survey})
    send_to_customer(app, session, ticket, rendered, "survey" if survey else "notification", now)
    add_event(ticket, actor="postdesk", type="auto_closed", now=now, reason=why)
    stats.closed += 1


def _survey(app: App, ticket: Ticket) -> list[dict[str, str]]:
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


def _render(app: App, ticket: Ticket, name: str, extra: dict[str, object]) -> Rendered:
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
    return app.policy.templates.render(name, ticket.language, variables)


def _check_sla(
    app: App, session: Session, ticket: Ticket, now: datetime, stats: SweepStats
) -> None:
    flags = list(ticket.sla_flags or [])
    for flag, at in sla.moments(app, ticket):
        if flag in flags or at > now:
            continue
        flags.append(flag)
        breach = flag.endswith("_breach")
        what = flag.replace("_", " ")
        body = (
            f"Ticket #{ticket.number} ({ticket.priority}, queue {ticket.queue}, assignee "
            f"{ticket.assignee or 'nobody'}): {what} at {at.isoformat(timespec='minutes')}.\n"
            f"Requester: {ticket.requester}. Status: {ticket.status}."
        )
        for recipient in _escalation(app, ticket, breach):
            queue_notice(app, session, ticket, recipient, f"SLA {what}", body, now)
        add_event(ticket, actor="postdesk", type="sla", now=now, flag=flag, due=at.isoformat())
        if breach:
            stats.sla_breaches += 1
        else:
            stats.sla_warnings += 1
    ticket.sla_flags = flags
    sla.reschedule(app, ticket)


def _escalation(app: App, ticket: Ticket, breach: bool) -> list[str]:
    """Warnings go to the assignee; breaches also to the queue's escalation address (or the
    managers, or the admin)."""
    settings = app.settings
    found = [ticket.assignee] if ticket.assignee else []
    if breach or not found:
        chain = [q.escalation for q in settings.queue_chain(ticket.queue) if q.escalation]
        fallback = settings.lifecycle.managers or settings.admin_address
        found += chain[:1] or ([fallback] if fallback else [])
    return list(dict.fromkeys(found))


def _digest(app: App, now: datetime, stats: SweepStats) -> None:
    """Once a day after `lifecycle.digest_at` (desk time): unassigned tickets to the managers."""
    lifecycle = app.settings.lifecycle
    managers = lifecycle.managers or app.settings.admin_address
    zone = app.policy.calendar("").zone
    local = now.astimezone(zone)
    if not managers or local.time() < time.fromisoformat(lifecycle.digest_at):
        return
    with app.db.transaction() as session:
        if not sweeps.claim_day(session, "digest", int(local.strftime("%Y%m%d"))):
            return
        waiting = sweeps.unassigned(session, now - lifecycle.unassigned_after)
        if not waiting:
            return
        waiting = sorted(waiting, key=lambda t: (URGENT_FIRST.get(t.priority, 2), t.created_at))
        lines = [
            f"{len(waiting)} tickets have had no assignee for over {lifecycle.unassigned_after}:",
            "",
        ]
        for ticket in waiting:
            mark = "!! " if ticket.priority in ("urgent", "high") else "   "
            age = now - ticket.created_at
            state = ", ".join(ticket.sla_flags or []) or "within SLA"
            lines.append(
                f"{mark}#{ticket.number} [{ticket.priority}] {ticket.subject[:60]} — "
                f"{ticket.queue}, {_age(age)} old, {state}, temperature {temperature(ticket, now)}"
            )
        queue_internal(
            app, session, managers, "unassigned tickets", "\n".join(lines), now, "notice"
        )
        stats.digests += 1


def _weekly_report(app: App, now: datetime, stats: SweepStats) -> None:
    """On Mondays after `lifecycle.digest_at`: last week's figures to the managers, once."""
    lifecycle = app.settings.lifecycle
    managers = lifecycle.managers
    local = now.astimezone(app.policy.calendar("").zone)
    if (
        not managers
        or local.weekday() != 0
        or local.time() < time.fromisoformat(lifecycle.digest_at)
    ):
        return
    figures = report.build(app, now - timedelta(days=7), now)
    with app.db.transaction() as session:
        if not sweeps.claim_day(session, "weekly_report", int(local.strftime("%Y%m%d"))):
            return
        queue_internal(
            app,
            session,
            managers,
            "weekly support report",
            report.render(figures, "table"),
            now,
            "notice",
            html=report.render(figures, "html"),
        )
    stats.reports += 1


def _age(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"
