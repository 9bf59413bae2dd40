"""Support figures over a hand-built week whose right answers are worked out below, in
calendar and business time, and `postdesk report` in each of its formats."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postdesk.daemon.app import App
from postdesk.daemon.reporting.charts import nice_ticks
from postdesk.daemon.reporting.report import build, render
from postdesk.store.models import Event, Message, Outbox, Ticket

SINCE = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday
UNTIL = SINCE + timedelta(days=7)
HOUR = timedelta(hours=1)
ALWAYS_OPEN = {"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}}
OFFICE = {"timezone": "UTC", "week": {"mon-fri": "09:00-18:00"}}


def at(day: int, hour: float = 0) -> datetime:
    """November 2026, UTC."""
    return datetime(2026, 11, day, tzinfo=UTC) + hour * HOUR


@pytest.fixture
def make_desk(open_app: Callable[..., App]) -> Callable[..., App]:
    return lambda hours: open_app(business_hours=hours)


def ticket(number: int, queue: str, priority: str, assignee: str | None, **stamps: Any) -> Ticket:
    return Ticket(
        number=number,
        subject=f"Question {number}",
        status=stamps.pop("status", "open"),
        priority=priority,
        queue=queue,
        requester=f"c{number}@example.org",
        assignee=assignee,
        tags=[],
        language="en",
        matched_rules=[],
        updated_at=stamps["created_at"],
        **stamps,
    )


def reply(t: Ticket, sender: str, when: datetime, kind: str = "agent") -> None:
    """An answer as the relay stores it: from the support address, written by the agent."""
    t.messages.append(
        Message(
            direction="out",
            kind=kind,
            from_addr="support@example.com",
            author=sender,
            subject="Re",
            body="answer",
            created_at=when,
        )
    )


def event(t: Ticket, type: str, when: datetime, **data: Any) -> None:
    t.events.append(Event(at=when, actor="postdesk", type=type, data=data))


def survey(t: Ticket, when: datetime) -> Outbox:
    return Outbox(
        ticket_id=t.id,
        kind="survey",
        sender="support@example.com",
        to_addr=t.requester,
        message_id=f"s{t.number}@example.com",
        content=b"",
        status="sent",
        next_attempt_at=when,
        created_at=when,
    )


def history(app: App) -> None:
    """Seven tickets around the week of 16-22 November 2026 (T5 lies wholly before it)."""
    t1 = ticket(1, "general", "normal", "anna@example.com", status="closed", created_at=at(16, 9))
    t1.first_response_at, t1.resolved_at, t1.closed_at = at(16, 10), at(17, 9), at(18, 9)
    reply(t1, "anna@example.com", at(16, 10))
    reply(t1, "anna@example.com", at(16, 11), kind="note")
    event(t1, "autoreply_queued", at(16, 9), template="ack")
    event(t1, "survey_answer", at(18, 10), score=5)

    t2 = ticket(2, "general", "high", "anna@example.com", status="resolved", created_at=at(16, 12))
    t2.first_response_at, t2.resolved_at = at(16, 15), at(19, 12)
    t2.sla_flags, t2.reopen_count = ["first_response_warning", "first_response_breach"], 1
    reply(t2, "anna@example.com", at(16, 15))
    reply(t2, "anna@example.com", at(18, 9))
    event(t2, "autoreply_queued", at(16, 12), template="ack")
    event(t2, "reopened", at(17, 8))
    event(t2, "survey_answer", at(19, 13), score=1)

    t3 = ticket(3, "ops", "normal", "bob@example.com", created_at=at(18, 8))
    t3.first_response_at, t3.first_response_due, t3.resolution_due = (
        at(18, 8.5),
        at(18, 16),
        at(20, 8),
    )
    t3.sla_flags = ["resolution_breach"]
    reply(t3, "bob@example.com", at(18, 8.5))
    event(t3, "autoreply_queued", at(18, 8), template="ack")

    t4 = ticket(4, "ops", "urgent", None, status="new", created_at=at(21))
    t4.first_response_due, t4.sla_flags = at(21, 0.5), ["first_response_breach"]
    event(t4, "autoreply_suppressed", at(21), reason="bulk")

    t5 = ticket(5, "general", "normal", "anna@example.com", status="closed", created_at=at(1))
    t5.first_response_at, t5.resolved_at, t5.closed_at = at(1, 1), at(2), at(9)
    reply(t5, "anna@example.com", at(1, 1))
    event(t5, "autoreply_queued", at(1), template="ack")

    t6 = ticket(6, "billing", "low", "bob@example.com", status="pending", created_at=at(10, 10))
    t6.first_response_at, t6.first_response_due, t6.resolution_due = at(16, 10), at(10, 18), at(30)
    reply(t6, "bob@example.com", at(16, 10))

    t7 = ticket(7, "general", "normal", None, status="resolved", created_at=at(22, 23))
    t7.resolved_at, t7.first_response_due = at(23, 1), at(23, 7)
    event(t7, "autoreply_suppressed", at(22, 23), reason="rate limit")

    with app.db.transaction() as session:
        session.add_all([t1, t2, t3, t4, t5, t6, t7])
        session.flush()
        session.add_all([survey(t1, at(18, 9)), survey(t2, at(19, 12)), survey(t5, at(9))])


def hours(value: float | None) -> float | None:
    return None if value is None else value / 3600


def test_week_overall_in_calendar_time(make_desk: Callable[..., App]) -> None:
    app = make_desk(ALWAYS_OPEN)
    history(app)
    data = build(app, SINCE, UNTIL)
    f = data.overall
    # created in the week: T1 T2 T3 T4 T7; resolved: T1 (17th) T2 (19th); closed: T1
    assert (f.created, f.resolved, f.closed) == (5, 2, 1)
    # first answers in the week: T3 0.5 h, T1 1 h, T2 3 h, T6 144 h (created the week before)
    fr = f.first_response
    assert (fr.count, hours(fr.mean), hours(fr.median), hours(fr.p90)) == (4, 37.125, 2, 144)
    assert f.first_response_business == fr  # open around the clock
    res = f.resolution
    assert (res.count, hours(res.mean), hours(res.median), hours(res.p90)) == (2, 48, 48, 72)
    assert f.first_response_within_sla == 0.75  # T2 breached
    assert f.resolution_within_sla == 1.0
    assert f.sla_flags == {
        "first_response_breach": 2,  # T2, T4
        "first_response_warning": 1,
        "resolution_breach": 1,  # T3
    }
    assert f.resolution_rate == 2 / 5  # T7 was resolved only after the week
    assert f.first_contact_resolution == 0.5  # T1 one agent reply (and a note), T2 two
    assert f.reopen_rate == 0.5  # T2
    # open at the end: T3 T4 T6 T7; past SLA: T3 (resolution due 20th), T4 (unanswered)
    assert (f.backlog, f.backlog_past_sla) == (4, 2)
    assert f.autoreplies_sent == 3  # T5's is from the 1st
    assert f.autoreplies_suppressed == {"bulk": 1, "rate limit": 1}
    assert (f.surveys_sent, f.surveys_answered, f.satisfied) == (2, 2, 1)
    assert (f.csat, f.survey_response_rate) == (0.5, 1.0)
    assert [(a.agent, a.replies, a.tickets) for a in data.agents] == [
        ("anna@example.com", 3, 2),
        ("bob@example.com", 2, 2),
    ]
    assert [(d.day.day, d.created, d.resolved, d.backlog) for d in data.days] == [
        (16, 2, 0, 3),  # T1 T2 and T6 from the week before
        (17, 0, 1, 2),
        (18, 1, 0, 3),  # T1 closed on the 18th was already counted resolved on the 17th
        (19, 0, 1, 2),
        (20, 0, 0, 2),
        (21, 1, 0, 3),
        (22, 1, 0, 4),
    ]
    assert [(d.surveys_answered, d.satisfied) for d in data.days if d.surveys_answered] == [
        (1, 1),
        (1, 0),
    ]
    assert dict(data.first_response_histogram) == {
        "0-1h": 2,
        "1-2h": 0,
        "2-4h": 1,
        "4-8h": 0,
        "8-24h": 0,
        "24-48h": 0,
        ">48h": 1,
    }


def test_week_by_queue_and_agent(make_desk: Callable[..., App]) -> None:
    app = make_desk(ALWAYS_OPEN)
    history(app)
    by_queue = build(app, SINCE, UNTIL, "queue")
    assert by_queue.overall == build(app, SINCE, UNTIL).overall
    groups = by_queue.groups
    assert list(groups) == ["billing", "general", "ops"]
    assert [(g.created, g.resolved, g.backlog, g.backlog_past_sla) for g in groups.values()] == [
        (0, 0, 1, 0),
        (3, 2, 1, 0),
        (2, 0, 2, 2),
    ]
    assert hours(groups["billing"].first_response.median) == 144
    assert groups["general"].csat == 0.5
    assert groups["ops"].autoreplies_suppressed == {"bulk": 1}
    by_agent = build(app, SINCE, UNTIL, "agent").groups
    assert list(by_agent) == ["(unassigned)", "anna@example.com", "bob@example.com"]
    assert by_agent["(unassigned)"].created == 2
    assert by_agent["anna@example.com"].first_contact_resolution == 0.5


def test_shares_within_times_escalations_and_reopened_first_contact(
    make_desk: Callable[..., App],
) -> None:
    app = make_desk(ALWAYS_OPEN)
    history(app)
    t8 = ticket(8, "general", "normal", "anna@example.com", status="resolved", created_at=at(17, 9))
    t8.first_response_at, t8.resolved_at, t8.reopen_count = at(17, 9 + 1 / 3), at(17, 15), 1
    reply(t8, "anna@example.com", at(17, 9 + 1 / 3))
    with app.db.transaction() as session:
        session.add(t8)
        t3 = session.query(Ticket).filter_by(number=3).one()
        event(t3, "escalated", at(18, 9), queue=["ops", "experts"])
    f = build(app, SINCE, UNTIL).overall
    # first answers: T8 20 min, T3 30 min, T1 1 h, T2 3 h, T6 144 h
    assert f.first_response_within == {"30m": 2 / 5, "1h": 3 / 5}
    # resolved: T8 in 6 h, T1 24 h, T2 72 h
    assert f.resolution_within == {"8h": 1 / 3}
    # T8 had one answer but was reopened: only T1 was resolved at first contact
    assert f.first_contact_resolution == 1 / 3
    # created in the week: T1 T2 T3 T4 T7 T8; T3 moved to a higher line
    assert f.escalation_rate == 1 / 6
    data = json.loads(render(build(app, SINCE, UNTIL, "queue"), "json"))
    assert data["groups"]["ops"]["escalation_rate"] == 1 / 2
    # general's first answers: T8 20 min, T1 1 h, T2 3 h
    assert data["groups"]["general"]["first_response_within"] == {"30m": 1 / 3, "1h": 2 / 3}


def test_a_ticket_merged_into_another_counts_as_none(make_desk: Callable[..., App]) -> None:
    """T8, a duplicate of T1 merged into it within minutes, is T1's mail now: counted, it
    would be a resolution in minutes with no answer."""
    app = make_desk(ALWAYS_OPEN)
    history(app)
    before = build(app, SINCE, UNTIL, "queue")
    with app.db.transaction() as session:
        t1 = session.query(Ticket).filter_by(number=1).one()
        t8 = ticket(8, "general", "normal", None, status="closed", created_at=at(16, 9.5))
        t8.resolved_at = t8.closed_at = at(16, 9.6)
        t8.merged_into_id = t1.id
        session.add(t8)
    after = build(app, SINCE, UNTIL, "queue")
    assert (after.overall, after.groups, after.days) == (before.overall, before.groups, before.days)


def test_business_time_follows_office_hours(make_desk: Callable[..., App]) -> None:
    app = make_desk(OFFICE)
    history(app)
    f = build(app, SINCE, UNTIL).overall
    # first answers in office hours (Mon-Fri 09-18): T3 came at 08:00 and was answered at
    # 08:30, before opening: 0; T1 1 h; T2 3 h; T6 from Tue 10th 10:00 to Mon 16th 10:00:
    # 8 + 9 + 9 + 9 + 1 = 36 h
    fr = f.first_response_business
    assert (hours(fr.mean), hours(fr.median), hours(fr.p90)) == (10, 2, 36)
    # resolution: T1 Mon 09:00 -> Tue 09:00 is 9 h; T2 Mon 12:00 -> Thu 12:00 is 6+9+9+3
    res = f.resolution_business
    assert (hours(res.mean), hours(res.median), hours(res.p90)) == (18, 18, 27)
    assert hours(f.first_response.mean) == 37.125  # calendar time is unchanged


def test_empty_period_has_no_figures(make_desk: Callable[..., App]) -> None:
    app = make_desk(ALWAYS_OPEN)
    data = build(app, SINCE, UNTIL)
    assert data.overall.created == 0 and data.overall.first_response.median is None
    assert data.overall.csat is None
    assert "tickets created" in render(data, "table")
    page = render(data, "html")
    assert page.count("<svg") == 5
    for sentence in ("no tickets yet", "no first responses yet", "no answers yet"):
        assert sentence in page
    assert "no survey answers yet" in page


def test_chart_axes_have_round_ticks_and_days_read_as_days(make_desk: Callable[..., App]) -> None:
    assert nice_ticks(4) == [0, 1, 2, 3, 4]
    assert nice_ticks(37) == [0, 10, 20, 30, 40]
    assert nice_ticks(100) == [0, 25, 50, 75, 100]
    assert nice_ticks(0.3)[-1] >= 0.3
    app = make_desk(ALWAYS_OPEN)
    history(app)
    page = render(build(app, SINCE, UNTIL), "html")
    assert "Mon 16 Nov" in page and "Sun 22 Nov" in page
    assert "Support report, Mon 16 Nov 2026 - Sun 22 Nov 2026 UTC" in page
    headline = page[page.index('class="headline"') : page.index('class="charts"')]
    for figure in ("tickets created", "answered within 30m", "resolved within 8h", "CSAT"):
        assert figure in headline


def postdesk(app: App, *args: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "postdesk.daemon.cli",
            "--config",
            str(app.config_path),
            "report",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


PERIOD = ("--since", "2026-11-16", "--until", "2026-11-23T00:00:00+00:00")


def test_cli_json_csv_and_table(make_desk: Callable[..., App]) -> None:
    app = make_desk(ALWAYS_OPEN)
    history(app)
    data = json.loads(postdesk(app, *PERIOD, "--json"))
    assert data["since"] == "2026-11-16T00:00:00+00:00"
    assert data["overall"]["created"] == 5
    assert data["overall"]["first_response"]["median"] == 7200
    assert data["agents"][0] == {"agent": "anna@example.com", "replies": 3, "tickets": 2}

    rows = list(
        csv.DictReader(io.StringIO(postdesk(app, *PERIOD, "--format", "csv", "--by", "queue")))
    )
    values = {(r["group"], r["metric"]): r["value"] for r in rows}
    assert values["all", "created"] == "5"
    assert values["ops", "backlog_past_sla"] == "2"
    assert values["all", "autoreplies_suppressed.rate limit"] == "1"
    assert values["agent:bob@example.com", "replies"] == "2"

    text = postdesk(app, *PERIOD, "--by", "priority")
    assert re.search(r"^tickets created\s+5\s", text, re.M)
    assert re.search(r"^first response median\s+2h 00m\s", text, re.M)
    assert "anna@example.com" in text


def test_cli_html_is_one_offline_page(make_desk: Callable[..., App], tmp_path: Path) -> None:
    app = make_desk(ALWAYS_OPEN)
    history(app)
    out = tmp_path / "report.html"
    assert postdesk(app, *PERIOD, "--format", "html", "--output", str(out)) == ""
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "@import" not in page
    assert page.count("<svg") == 5
    for caption in ("tickets per day", "first response times", "SLA compliance", "backlog"):
        assert caption in page
    assert "CSAT" in page


def test_cli_refuses_an_empty_period(make_desk: Callable[..., App]) -> None:
    app = make_desk(ALWAYS_OPEN)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "postdesk.daemon.cli",
            "--config",
            str(app.config_path),
            "report",
            *["--since", "2026-11-23", "--until", "2026-11-16"],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 64


def png_colours(png: bytes) -> int:
    """Distinct pixel values in a PNG, read with the standard library only."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    position, data, width = 8, b"", 0
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        kind = png[position + 4 : position + 8]
        chunk = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width = int.from_bytes(chunk[:4], "big")
        elif kind == b"IDAT":
            data += chunk
        position += 12 + length
    pixels = zlib.decompress(data)
    stride = 1 + width * 4 if len(pixels) % (1 + width * 4) == 0 else 1 + width * 3
    rows = [pixels[i + 1 : i + stride] for i in range(0, len(pixels), stride)]
    return len({row[j : j + 3] for row in rows[::7] for j in range(0, len(row), 12)})


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_html_report_draws_its_charts_in_a_real_browser(
    make_desk: Callable[..., App], tmp_path: Path
) -> None:
    app = make_desk(ALWAYS_OPEN)
    history(app)
    page = tmp_path / "report.html"
    postdesk(app, *PERIOD, "--format", "html", "--output", str(page))
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), done.stderr.decode(errors="replace")
    assert png_colours(shot.read_bytes()) > 40
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert dom.count("<svg") == 5 and dom.count("<rect") > 10
