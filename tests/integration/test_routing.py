"""Rules applied by ingest: assignment strategies, watchers, rules on replies, spam, SLA due
times in business hours."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.schema import ensure_current
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import mail

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULES = """
rules:
  - name: spam
    if: {subject: [casino]}
    then: {spam: true}
    stop: true
  - name: billing
    if: {subject: [invoice, "счет"]}
    then: {queue: billing, assign: round_robin, cc: [ledger@example.com]}
  - name: ops
    if: {subject: [down]}
    then: {queue: ops, assign: least_loaded, priority: urgent}
  - name: urgent-reply
    applies_to: replies
    if: {body: [urgent, "срочно"]}
    then: {priority: high, tags: [escalated]}
"""


@pytest.fixture
def routed(write_config: Callable[..., Path], database_url: str, tmp_path: Path) -> Iterator[App]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    config = write_config(
        database=database_url,
        rules=str(rules),
        agents=[
            {"email": "anna@example.com", "queues": ["billing", "ops"]},
            {"email": "boris@example.com", "queues": ["billing", "ops"]},
        ],
        queues=[
            {"name": "general"},
            {"name": "billing", "members": ["carol@example.com"]},
            {
                "name": "ops",
                "sla": {"urgent": {"first_response": "15m", "resolution": "4h"}},
                "business_hours": {"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
            },
        ],
        business_hours={"timezone": "UTC", "week": {"mon-fri": "09:00-18:00"}},
    )
    app = App.open(str(config))
    ensure_current(app.db)
    yield app
    app.db.dispose()


def ticket(app: App, number: int) -> dict[str, Any]:
    with app.db.transaction() as session:
        found = load_ticket(session, str(number))
        assert found is not None
        return detail(found, MONDAY)


def test_round_robin_over_queue_members_and_watchers(routed: App) -> None:
    for i in range(4):
        ingest(routed, mail(subject=f"Invoice {i}").as_bytes(), "smtp", MONDAY)
    assignees = [ticket(routed, n)["assignee"] for n in range(1, 5)]
    assert assignees == [
        "carol@example.com",
        "anna@example.com",
        "boris@example.com",
        "carol@example.com",
    ]
    roles = {p["email"]: p["role"] for p in ticket(routed, 1)["participants"]}
    assert roles["ledger@example.com"] == "watcher"


def test_least_loaded_and_queue_sla_in_its_own_hours(routed: App) -> None:
    ingest(routed, mail(subject="Invoice 1").as_bytes(), "smtp", MONDAY)  # carol
    ingest(routed, mail(subject="Invoice 2").as_bytes(), "smtp", MONDAY)  # anna
    saturday_night = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    result = ingest(routed, mail(subject="Site down").as_bytes(), "smtp", saturday_night)
    ops = ticket(routed, result.ticket_number or 0)
    assert ops["assignee"] == "boris@example.com"
    assert ops["priority"] == "urgent"
    assert ops["first_response_due"] == (saturday_night + timedelta(minutes=15)).isoformat()


def test_general_sla_waits_for_business_hours(routed: App) -> None:
    friday_evening = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    result = ingest(routed, mail(subject="A question").as_bytes(), "smtp", friday_evening)
    due = ticket(routed, result.ticket_number or 0)["first_response_due"]
    assert due == datetime(2026, 11, 30, 16, 0, tzinfo=UTC).isoformat()  # 1 h Fri + 7 h Mon


def test_rules_on_replies_change_only_what_they_name(routed: App) -> None:
    ingest(routed, mail(subject="Invoice 7").as_bytes(), "smtp", MONDAY)
    reply = mail(subject="Re: [#1] Invoice 7", body="Срочно, пожалуйста!")
    assert ingest(routed, reply.as_bytes(), "smtp", MONDAY).outcome == "appended"
    shown = ticket(routed, 1)
    assert (shown["queue"], shown["priority"], shown["assignee"]) == (
        "billing",
        "high",
        "carol@example.com",
    )
    assert shown["tags"] == ["escalated"]
    event = next(e for e in shown["events"] if e["type"] == "rules_on_reply")
    assert event["data"]["changed"] == {"priority": ["normal", "high"]}


def test_spam_rule_quarantines_without_ticket_or_reply(routed: App) -> None:
    result = ingest(routed, mail(subject="Best casino bonus").as_bytes(), "smtp", MONDAY)
    assert (result.outcome, result.ticket_number, result.queued_mail) == ("quarantined", None, 0)
    assert "spam by rules: spam" in result.reason
