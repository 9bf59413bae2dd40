"""Ticket life on a timer, walked with `sweep` at chosen moments: reminders, auto-close,
survey answers, resolved -> closed, SLA warnings and breaches, the unassigned digest, and
concurrent sweeps that must not act twice."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.reporting.report import build
from postdesk.daemon.sweeps.run import run
from postdesk.parsers.references import make_agent_token
from postdesk.store.models import Outbox, Ticket
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import mail, parse_mail

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def make_desk(open_app: Callable[..., App]) -> Callable[..., App]:
    def make(**overrides: Any) -> App:
        settings: dict[str, Any] = {
            "admin_address": "admin@example.com",
            "queues": [
                {"name": "general", "escalation": "leads@example.com"},
                {"name": "ops"},
                {"name": "billing"},
            ],
            "business_hours": {"timezone": "UTC", "week": {"mon-fri": "09:00-18:00"}},
            "lifecycle": {"managers": "managers@example.com", "digest_at": "09:00"},
        }
        return open_app(**{**settings, **overrides})

    return make


def open_ticket(app: App, at: datetime = MONDAY, **kwargs: Any) -> int:
    result = ingest(app, mail(**kwargs).as_bytes(), "smtp", at)
    assert result.ticket_number is not None
    return result.ticket_number


def agent_answers(app: App, number: int, body: str, at: datetime) -> None:
    with app.db.transaction() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
    token = make_agent_token(app.secret, ticket_id, "anna@example.com")
    answer = mail(
        sender="anna@example.com",
        to=f"support+{token}@example.com",
        subject=f"Re: [#{number}]",
        body=body,
    )
    assert ingest(app, answer.as_bytes(), "smtp", at).outcome == "appended"


def show(app: App, number: int = 1) -> dict[str, Any]:
    with app.db.transaction() as session:
        ticket = load_ticket(session, str(number))
        assert ticket is not None
        return detail(ticket, MONDAY)


def outbox(app: App, kind: str) -> list[Any]:
    with app.db.transaction() as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))
        return [parse_mail(r.content) for r in rows]


def text(message: Any) -> str:
    return str(message.get_content()).replace("\r\n", "\n")


def test_pending_reminders_close_and_survey(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)
    agent_answers(desk, 1, "Please restart the printer.", MONDAY)
    assert show(desk)["status"] == "pending"
    assert run(desk, MONDAY + 2 * DAY - timedelta(minutes=1)).reminders == 0
    assert run(desk, MONDAY + 2 * DAY).reminders == 1
    assert run(desk, MONDAY + 2 * DAY).reminders == 0  # the same moment twice: nothing more
    (first,) = outbox(desk, "reminder")
    assert "Is the problem solved?" in text(first)
    assert "Please restart the printer." in text(first)
    assert first["Auto-Submitted"] == "auto-generated"
    assert run(desk, MONDAY + 4 * DAY).reminders == 1
    assert "(2 of 2)" in text(outbox(desk, "reminder")[1])
    stats = run(desk, MONDAY + 6 * DAY)
    assert (stats.reminders, stats.closed) == (0, 1)
    state = show(desk)
    assert state["status"] == "closed"
    (closing,) = outbox(desk, "survey")
    links = re.findall(r"mailto:(\S+)", text(closing))
    assert len(links) == 2
    good = unquote(links[0]).split("?")[0]
    answer = mail(to=good, subject="[#1] survey", body="")
    result = ingest(desk, answer.as_bytes(), "smtp", MONDAY + 7 * DAY)
    assert (result.outcome, result.queued_mail) == ("suppressed", 0)
    state = show(desk)
    assert state["status"] == "closed"
    survey = next(e for e in state["events"] if e["type"] == "survey_answer")
    assert survey["data"] == {"score": 5, "comment": ""}
    bad = unquote(links[1]).split("?")[0]
    ingest(desk, mail(to=bad, subject="x", body="").as_bytes(), "smtp", MONDAY + 7 * DAY)
    assert any(e["type"] == "survey_repeated" for e in show(desk)["events"])
    with desk.db.transaction() as session:
        assert session.scalar(select(Ticket.csat_score)) == 5
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def closed_with_survey(desk: App) -> list[str]:
    """Ticket #1 closed by the reminder cycle; its survey's answer addresses, best first."""
    open_ticket(desk)
    agent_answers(desk, 1, "Please restart the printer.", MONDAY)
    for days in (2, 4, 6):  # two reminders, then the close
        run(desk, MONDAY + days * DAY)
    assert show(desk)["status"] == "closed"
    (closing,) = outbox(desk, "survey")
    return [unquote(link).split("?")[0] for link in re.findall(r"mailto:(\S+)", text(closing))]


def test_survey_comment_reopens_the_ticket_and_tells_the_agents(
    make_desk: Callable[..., App],
) -> None:
    desk = make_desk(notify={"customer_reply": True})
    _, bad = closed_with_survey(desk)
    answer = mail(to=bad, subject="[#1] survey", body="Please reopen, it still fails.")
    result = ingest(desk, answer.as_bytes(), "smtp", MONDAY + 7 * DAY)
    assert result.outcome == "appended"
    state = show(desk)
    assert (state["status"], state["reopen_count"]) == ("open", 1)
    assert state["messages"][-1]["kind"] == "customer"
    assert "it still fails" in state["messages"][-1]["body"]
    (notice,) = [n for n in outbox(desk, "agent_notification") if "reopened" in str(n["Subject"])]
    assert "Please reopen, it still fails." in text(notice)
    with desk.db.transaction() as session:
        assert session.scalar(select(Ticket.csat_score)) == 1


def test_survey_answer_of_another_sender_is_ignored_and_blocks_nothing(
    make_desk: Callable[..., App],
) -> None:
    desk = make_desk()
    good, bad = closed_with_survey(desk)
    forged = mail(sender="mallory@evil.example", to=good, subject="[#1] survey", body="Great!")
    result = ingest(desk, forged.as_bytes(), "smtp", MONDAY + 7 * DAY)
    assert (result.outcome, result.reason) == ("suppressed", "survey answer not from the requester")
    state = show(desk)
    assert state["status"] == "closed"
    assert any(
        e["type"] == "security" and e["actor"] == "mallory@evil.example" for e in state["events"]
    )
    own = mail(to=bad, subject="[#1] survey", body="Please reopen, it still fails.")
    assert ingest(desk, own.as_bytes(), "smtp", MONDAY + 7 * DAY).outcome == "appended"
    assert show(desk)["status"] == "open"
    with desk.db.transaction() as session:
        assert session.scalar(select(Ticket.csat_score)) == 1


def test_forged_survey_answer_is_ignored(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)
    forged = mail(to="support+s1v5xaaaaaaaaaaaaaaaa@example.com", subject="survey")
    result = ingest(desk, forged.as_bytes(), "smtp", MONDAY)
    assert (result.outcome, result.reason) == ("suppressed", "survey answer with no valid token")
    with desk.db.transaction() as session:
        assert session.scalar(select(Ticket.csat_score)) is None


def test_customer_answer_after_first_reminder_stops_the_cycle(
    make_desk: Callable[..., App],
) -> None:
    desk = make_desk()
    open_ticket(desk)
    agent_answers(desk, 1, "Try again please.", MONDAY)
    run(desk, MONDAY + 2 * DAY)
    reply = mail(subject="Re: [#1] Printer is on fire", body="Still broken.")
    ingest(desk, reply.as_bytes(), "smtp", MONDAY + 2 * DAY + timedelta(hours=1))
    assert show(desk)["status"] == "open"
    stats = run(desk, MONDAY + 30 * DAY)
    assert (stats.reminders, stats.closed) == (0, 0)
    agent_answers(desk, 1, "New firmware is out.", MONDAY + 3 * DAY)
    assert run(desk, MONDAY + 5 * DAY).reminders == 1
    assert "(1 of 2)" in text(outbox(desk, "reminder")[-1])


def test_business_clock_skips_the_weekend(make_desk: Callable[..., App]) -> None:
    desk = make_desk(lifecycle={"clock": "business", "managers": "managers@example.com"})
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    open_ticket(desk, friday)
    agent_answers(desk, 1, "Please check.", friday)
    assert run(desk, datetime(2026, 12, 1, 14, 59, tzinfo=UTC)).reminders == 0
    assert run(desk, datetime(2026, 12, 1, 15, 0, tzinfo=UTC)).reminders == 1  # Tuesday


def test_resolved_ticket_closes_after_a_week(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)
    agent_answers(desk, 1, "#resolve\nFixed by replacing the fuser.", MONDAY)
    assert run(desk, MONDAY + 7 * DAY - timedelta(minutes=1)).closed == 0
    assert run(desk, MONDAY + 7 * DAY).closed == 1
    assert show(desk)["status"] == "closed"
    assert len(outbox(desk, "survey")) == 1


def test_sla_warning_and_breach_escalate_once(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)  # normal: first response within 8 business hours, Monday 18:00
    assert run(desk, MONDAY + timedelta(hours=6)).sla_warnings == 0
    stats = run(desk, MONDAY + timedelta(hours=6, minutes=24))  # 80 % of 8 h
    assert (stats.sla_warnings, stats.sla_breaches) == (1, 0)
    breach = run(desk, MONDAY + timedelta(hours=8))
    assert (breach.sla_warnings, breach.sla_breaches) == (0, 1)
    assert run(desk, MONDAY + timedelta(hours=9)).sla_breaches == 0
    state = show(desk)
    flags = [e["data"]["flag"] for e in state["events"] if e["type"] == "sla"]
    assert flags == ["first_response_warning", "first_response_breach"]
    notices = [m for m in outbox(desk, "notice") if "SLA" in str(m["Subject"])]
    assert [str(m["To"]) for m in notices] == ["leads@example.com", "leads@example.com"]
    assert "first response breach" in str(notices[1]["Subject"])


def test_first_answer_in_time_prevents_the_breach(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)
    agent_answers(desk, 1, "Looking into it.", MONDAY + timedelta(hours=1))
    stats = run(desk, MONDAY + timedelta(hours=9))
    assert (stats.sla_warnings, stats.sla_breaches) == (0, 0)


def test_unassigned_digest_lists_urgent_first_once_a_day(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk, MONDAY, subject="Question about invoices")
    open_ticket(desk, MONDAY + timedelta(hours=1), subject="Site down since 10:00")
    with desk.db.transaction() as session:
        urgent = session.scalar(select(Ticket).where(Ticket.number == 2))
        assert urgent is not None
        urgent.priority = "urgent"
    tuesday_morning = datetime(2026, 11, 24, 8, 59, tzinfo=UTC)
    assert run(desk, tuesday_morning).digests == 0
    assert run(desk, tuesday_morning + timedelta(minutes=1)).digests == 0  # not a day old yet
    wednesday = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert run(desk, wednesday).digests == 1
    assert run(desk, wednesday + timedelta(hours=3)).digests == 0
    (digest,) = [m for m in outbox(desk, "notice") if "unassigned" in str(m["Subject"])]
    assert str(digest["To"]) == "managers@example.com"
    lines = [line for line in text(digest).splitlines() if "#" in line]
    assert lines[0].startswith("!! #2 [urgent] Site down")
    assert lines[1].startswith("   #1 [normal] Question about invoices")


def test_concurrent_sweeps_send_each_reminder_once(make_desk: Callable[..., App]) -> None:
    desks = [make_desk(), make_desk()]
    for i in range(30):
        open_ticket(desks[0], subject=f"Question {i}", sender=f"c{i}@example.org")
        agent_answers(desks[0], i + 1, "Answer.", MONDAY)
    barrier = threading.Barrier(2)
    totals: list[int] = []

    def sweep(app: App) -> None:
        barrier.wait()
        totals.append(run(app, MONDAY + 2 * DAY).reminders)

    threads = [threading.Thread(target=sweep, args=(d,)) for d in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(totals) == 30
    assert len(outbox(desks[0], "reminder")) == 30


def test_weekly_report_goes_to_the_managers_on_monday_once(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk, MONDAY - 3 * DAY)
    agent_answers(desk, 1, "#resolve\nDone.", MONDAY - 2 * DAY)
    assert run(desk, datetime(2026, 11, 30, 8, 59, tzinfo=UTC)).reports == 0
    assert run(desk, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)).reports == 1
    assert run(desk, datetime(2026, 11, 30, 15, 0, tzinfo=UTC)).reports == 0
    assert run(desk, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)).reports == 0  # Tuesday
    (weekly,) = [m for m in outbox(desk, "notice") if "weekly" in str(m["Subject"])]
    assert str(weekly["To"]) == "managers@example.com"
    html = weekly.get_body(("html",))
    assert html is not None and "<svg" in html.get_content()
    plain = weekly.get_body(("plain",))
    assert plain is not None and "created" in plain.get_content().lower()


def test_unanswered_customer_mails_make_a_ticket_hotter(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk, subject="First", sender="a@example.org")
    open_ticket(desk, subject="Second", sender="b@example.org")
    for body in ("Any news?", "Hello??"):
        follow_up = mail(sender="b@example.org", subject="Re: [#2] Second", body=body)
        ingest(desk, follow_up.as_bytes(), "smtp", MONDAY)
    hot, cold = show(desk, 2), show(desk, 1)
    assert hot["temperature"] > cold["temperature"]
    agent_answers(desk, 2, "Sorry for the wait, here is the fix.", MONDAY)
    assert show(desk, 2)["temperature"] <= show(desk, 1)["temperature"]


def survey_links(message: Any) -> list[str]:
    return [unquote(link).split("?")[0] for link in re.findall(r"mailto:(\S+)", text(message))]


def test_agent_close_sends_the_survey_once(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)
    agent_answers(desk, 1, "#close\nReplaced the fuser, closing.", MONDAY)
    (survey,) = outbox(desk, "survey")
    assert survey["To"] == "ann@example.org"
    assert "is now closed" in text(survey) and len(survey_links(survey)) == 2
    reply = mail(subject="Re: [#1] Printer is on fire", body="It broke again.")
    ingest(desk, reply.as_bytes(), "smtp", MONDAY + DAY)
    assert show(desk)["status"] == "open"
    agent_answers(desk, 1, "#close\nFixed for good.", MONDAY + 2 * DAY)
    assert len(outbox(desk, "survey")) == 1  # a ticket is surveyed once


def test_resolve_surveys_only_when_send_on_names_it(make_desk: Callable[..., App]) -> None:
    desk = make_desk(survey={"send_on": ["resolve", "auto_close"]})
    open_ticket(desk)
    agent_answers(desk, 1, "#resolve\nFixed.", MONDAY)
    (survey,) = outbox(desk, "survey")
    assert "is resolved" in text(survey)
    assert run(desk, MONDAY + 7 * DAY).closed == 1
    assert len(outbox(desk, "survey")) == 1
    (notice,) = outbox(desk, "notification")
    assert "is now closed" in text(notice) and survey_links(notice) == []


def test_resolve_sends_no_survey_by_default(make_desk: Callable[..., App]) -> None:
    desk = make_desk()
    open_ticket(desk)
    agent_answers(desk, 1, "#resolve\nFixed.", MONDAY)
    assert outbox(desk, "survey") == []


def test_nps_scale_links_and_figure(make_desk: Callable[..., App]) -> None:
    desk = make_desk(survey={"scale": "nps"})
    open_ticket(desk)
    agent_answers(desk, 1, "#close\nDone.", MONDAY)
    (survey,) = outbox(desk, "survey")
    assert "recommend us" in text(survey)
    links = survey_links(survey)
    assert len(links) == 11
    click = mail(to=links[0], subject="[#1] survey", body="")  # words would be a reply
    ingest(desk, click.as_bytes(), "smtp", MONDAY + DAY)
    assert show(desk)["events"][-1]["data"]["score"] == 10
    figures = build(desk, MONDAY - DAY, MONDAY + 2 * DAY).overall
    assert (figures.nps, figures.csat) == (100.0, 1.0)


def test_a_sweep_that_fails_on_one_ticket_handles_the_others_and_retries_later(
    make_desk: Callable[..., App], tmp_path: Path
) -> None:
    """A broken Russian reminder template (a variable no reminder has) fails the Russian
    ticket alone: the English ones get their reminders in the same run, and the admin hears."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "reminder.ru.txt").write_text(
        "Subject: [#{{ ticket.number }}]\n\n{{ agent_signature }}\n", encoding="utf-8"
    )
    desk = make_desk(templates=str(templates))
    russian = open_ticket(
        desk,
        sender="petr@example.org",
        subject="Не работает принтер",
        body="Здравствуйте! Принтер в комнате четыре не печатает, помогите, пожалуйста.",
    )
    english = [open_ticket(desk, sender=f"c{i}@example.org") for i in range(2)]
    for number in (russian, *english):
        agent_answers(desk, number, "Please restart the printer.", MONDAY)
    assert show(desk, russian)["language"] == "ru"

    stats = run(desk, MONDAY + 2 * DAY)
    assert (stats.reminders, stats.failed) == (2, 1)
    assert len(outbox(desk, "reminder")) == 2
    failed = show(desk, russian)
    assert failed["status"] == "pending"
    (event,) = [e for e in failed["events"] if e["type"] == "sweep_failed"]
    assert event["data"]["sweep"] == "reminder" and "agent_signature" in event["data"]["error"]
    (alert,) = outbox(desk, "alert")
    assert f"reminder sweep failed on ticket #{russian}" in alert["Subject"]

    held = run(desk, MONDAY + 2 * DAY + timedelta(minutes=1))  # the next minute: held, quiet
    assert (held.reminders, held.failed) == (0, 0)
    (templates / "reminder.ru.txt").unlink()  # the admin fixes the template
    desk.reload()
    retried = run(desk, MONDAY + 2 * DAY + timedelta(minutes=20))
    assert (retried.reminders, retried.failed) == (1, 0)
    assert any(e["type"] == "reminder" for e in show(desk, russian)["events"])
