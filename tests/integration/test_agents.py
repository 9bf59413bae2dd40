"""Agents answer from their mail clients: notifications, relayed replies, commands, notes,
and mail that only claims to be from an agent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.models import Outbox
from postdesk.store.schema import ensure_current
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import DATA, mail, parse_mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ANNA = "anna@example.com"
BORIS = "boris@example.com"


@pytest.fixture
def desk(write_config: Callable[..., Path], database_url: str) -> Iterator[App]:
    config = write_config(
        database=database_url,
        agents=[
            {"email": ANNA, "name": "Anna", "queues": ["general"]},
            {"email": BORIS, "name": "Boris", "queues": ["ops"]},
        ],
        notify={"new_ticket": True, "customer_reply": True},
        agent_auth={"trusted_authserv_ids": ["mx.example.com"]},
        business_hours={"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
    )
    app = App.open(str(config))
    ensure_current(app.db)
    yield app
    app.db.dispose()


def sent(app: App, kind: str, to: str | None = None) -> list[EmailMessage]:
    with app.db.transaction() as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))
        return [parse_mail(r.content) for r in rows if to is None or to in r.recipients]


def body(message: EmailMessage) -> str:
    return str(message.get_content()).replace("\r\n", "\n").strip()


def ticket(app: App, number: int = 1) -> dict[str, Any]:
    with app.db.transaction() as session:
        found = load_ticket(session, str(number))
        assert found is not None
        return detail(found, NOW)


def reply_as_agent(
    notification: EmailMessage, body: str, sender: str = ANNA, **headers: str
) -> bytes:
    """An agent's answer as a mail client writes it: to the Reply-To, quoting the notice."""
    answer = mail(
        sender=f"Anna <{sender}>",
        to=str(notification["Reply-To"]),
        subject=f"Re: {notification['Subject']}",
        body=body,
        In_Reply_To=str(notification["Message-ID"]),
        References=str(notification["Message-ID"]),
        **headers,
    )
    return answer.as_bytes()


def quoted(notification: EmailMessage, style: str) -> str:
    original = notification.get_content()
    if style == "thunderbird":
        head = "On 23.11.2026 10:00, support@example.com wrote:"
        return head + "\n" + "\n".join(f"> {line}" for line in original.splitlines())
    if style == "outlook":
        return (
            "________________________________\nFrom: support@example.com\n"
            "Sent: Monday, November 23, 2026 10:00 AM\nTo: Anna\n"
            f"Subject: {notification['Subject']}\n\n{original}"
        )
    if style == "gmail-ru":
        head = "пн, 23 нояб. 2026 г. в 10:00, Support <support@example.com>:"
        return head + "\n" + "\n".join(f"> {line}" for line in original.splitlines())
    return "\n".join(f"> {line}" for line in original.splitlines())


def start(app: App, **kwargs: Any) -> EmailMessage:
    source = mail(**kwargs)
    assert ingest(app, source.as_bytes(), "smtp", NOW).outcome == "ticket_created"
    (notice,) = sent(app, "agent_notification", ANNA)
    return notice


def test_full_conversation(desk: App) -> None:
    notice = start(desk)
    assert notice["Auto-Submitted"] == "auto-generated"
    assert "the printer in room 4 is on fire" in notice.get_content()
    assert str(notice["Reply-To"]).startswith("support+a")
    answer = "Please switch it off and on again.\n\nAnna"
    reply = reply_as_agent(notice, f"{answer}\n\n{quoted(notice, 'thunderbird')}")
    result = ingest(desk, reply, "smtp", NOW + timedelta(minutes=20))
    assert result.outcome == "appended"
    (relay,) = sent(desk, "agent_reply")
    assert relay["To"] == "ann@example.org"
    assert relay["From"].addresses[0].addr_spec == "support@example.com"
    assert "[#1]" in relay["Subject"]
    assert relay["Auto-Submitted"] is None
    assert body(relay) == answer
    acknowledgement = sent(desk, "autoreply")[0]
    assert relay["References"].split()[0] in (
        f"<{m['message_id']}>" for m in ticket(desk)["messages"]
    )
    assert acknowledgement["In-Reply-To"] in relay["References"]
    state = ticket(desk)
    assert state["status"] == "pending"
    summary = sent(desk, "notice", ANNA)[-1]
    assert "answer sent to ann@example.org" in summary.get_content()

    customer = mail(subject="Re: [#1] Printer is on fire", body="It works now, thank you!")
    assert ingest(desk, customer.as_bytes(), "smtp", NOW + timedelta(hours=1)).outcome == "appended"
    assert ticket(desk)["status"] == "open"
    latest = sent(desk, "agent_notification", ANNA)[-1]
    assert "customer reply" in latest["Subject"] and "It works now" in latest.get_content()

    closing = reply_as_agent(
        latest, f"#resolve\nGreat, closing this.\n\n{quoted(latest, 'gmail-ru')}"
    )
    ingest(desk, closing, "smtp", NOW + timedelta(hours=2))
    final = ticket(desk)
    assert final["status"] == "resolved"
    kinds = [(m["direction"], m["kind"]) for m in final["messages"]]
    assert kinds == [
        ("in", "customer"),
        ("out", "autoreply"),
        ("out", "agent"),
        ("in", "customer"),
        ("out", "agent"),
    ]
    assert body(sent(desk, "agent_reply")[-1]) == "Great, closing this."


@pytest.mark.parametrize("style", ["thunderbird", "outlook", "gmail-ru", "plain-quote"])
def test_quotes_of_each_client_are_not_relayed(desk: App, style: str) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, f"Fixed.\n\n{quoted(notice, style)}"), "smtp", NOW)
    assert body(sent(desk, "agent_reply")[0]) == "Fixed."


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        ("#assign boris", {"assignee": BORIS}),
        ("#assign Anna", {"assignee": ANNA}),
        ("#priority urgent", {"priority": "urgent"}),
        ("#queue ops", {"queue": "ops"}),
        ("#tag printer\n#tag hardware\n#untag printer", {"tags": ["hardware"]}),
        ("#hold", {"status": "on_hold"}),
        ("#close", {"status": "closed"}),
        ("#pending", {"status": "pending"}),
    ],
)
def test_commands_alone_change_the_ticket_and_send_nothing(
    desk: App, commands: str, expected: dict[str, Any]
) -> None:
    notice = start(desk)
    ingest(
        desk, reply_as_agent(notice, f"{commands}\n\n{quoted(notice, 'thunderbird')}"), "smtp", NOW
    )
    state = ticket(desk)
    assert {k: state[k] for k in expected} == expected
    assert sent(desk, "agent_reply") == []


def test_an_answer_with_close_reaches_the_customer_before_the_survey(desk: App) -> None:
    """The survey asks about the answer, so it leaves after it and threads under it."""
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#close\nThe fuser is replaced."), "smtp", NOW)
    with desk.db.transaction() as session:
        kinds = session.scalars(
            select(Outbox.kind).where(Outbox.to_addr == "ann@example.org").order_by(Outbox.id)
        ).all()
    assert kinds == ["autoreply", "agent_reply", "survey"]
    (relay,), (survey,) = sent(desk, "agent_reply"), sent(desk, "survey")
    assert survey["In-Reply-To"] == relay["Message-ID"]
    summary = sent(desk, "notice", ANNA)[-1].get_content()
    assert summary.index("answer sent to") < summary.index("satisfaction survey sent to")
    assert ticket(desk)["status"] == "closed"


def test_cc_command_copies_the_next_answers(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#cc boss@example.org\nCopying your manager."), "smtp", NOW)
    (relay,) = sent(desk, "agent_reply")
    assert relay["Cc"] == "boss@example.org"
    assert body(relay) == "Copying your manager."


def test_assignment_notifies_the_new_assignee(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#assign boris"), "smtp", NOW)
    (assigned,) = sent(desk, "agent_notification", BORIS)
    assert "assigned to you" in assigned["Subject"]
    assert str(assigned["Reply-To"]) != str(notice["Reply-To"])  # Boris gets his own token


def test_answers_carry_their_author_and_new_text_is_kept(desk: App) -> None:
    notice = start(desk, body="The printer is on fire.\n\n-- \nAnn, room 4")
    reply = reply_as_agent(notice, f"Switch it off.\n\n{quoted(notice, 'thunderbird')}")
    ingest(desk, reply, "smtp", NOW)
    first, _, answer = ticket(desk)["messages"]
    assert (first["author"], first["new_text"]) == (None, "The printer is on fire.")
    assert (answer["from"], answer["author"]) == ("support@example.com", ANNA)
    assert ticket(desk)["assignee"] is None  # assign_on_first_answer is off by default


def test_first_answer_assigns_when_configured(
    write_config: Callable[..., Path], database_url: str
) -> None:
    config = write_config(
        database=database_url,
        agents=[{"email": ANNA, "name": "Anna", "queues": ["general"]}],
        notify={"new_ticket": True},
        assign_on_first_answer=True,
    )
    app = App.open(str(config))
    ensure_current(app.db)
    try:
        notice = start(app)
        ingest(app, reply_as_agent(notice, "On it."), "smtp", NOW)
        assert ticket(app)["assignee"] == ANNA
    finally:
        app.db.dispose()


def test_moving_to_a_queue_tells_its_members_and_a_higher_line_is_an_escalation(
    write_config: Callable[..., Path], database_url: str
) -> None:
    config = write_config(
        database=database_url,
        agents=[
            {"email": ANNA, "name": "Anna", "queues": ["general"]},
            {"email": BORIS, "name": "Boris", "queues": ["experts"]},
        ],
        queues=[
            {"name": "general", "line": 1},
            {"name": "experts", "line": 2},
            {"name": "ops"},
            {"name": "billing"},
        ],
        notify={"new_ticket": True},
    )
    app = App.open(str(config))
    ensure_current(app.db)
    try:
        notice = start(app)
        ingest(app, reply_as_agent(notice, "#queue experts"), "smtp", NOW)
        (moved,) = sent(app, "agent_notification", BORIS)
        assert "moved to your queue" in moved["Subject"]
        assert "the printer in room 4 is on fire" in moved.get_content()
        events = [e for e in ticket(app)["events"] if e["type"] == "escalated"]
        assert [e["data"]["queue"] for e in events] == [["general", "experts"]]
        ingest(app, reply_as_agent(notice, "#queue general"), "smtp", NOW)
        assert len([e for e in ticket(app)["events"] if e["type"] == "escalated"]) == 1
    finally:
        app.db.dispose()


def test_unknown_command_changes_nothing_and_says_why(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#priority high\n#clsoe\nDone, thanks."), "smtp", NOW)
    assert sent(desk, "agent_reply") == []
    state = ticket(desk)
    assert (state["priority"], state["status"]) == ("normal", "new")
    summary = sent(desk, "notice", ANNA)[-1].get_content()
    assert "REFUSED: unknown command '#clsoe'" in summary


def test_bad_arguments_are_refused_but_the_answer_goes(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#assign nobody\nOn it."), "smtp", NOW)
    assert body(sent(desk, "agent_reply")[0]) == "On it."
    assert "REFUSED: #assign nobody: no such agent" in sent(desk, "notice", ANNA)[-1].get_content()


def test_reply_with_only_a_quote_relays_nothing(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, quoted(notice, "thunderbird")), "smtp", NOW)
    assert sent(desk, "agent_reply") == []
    assert ticket(desk)["status"] == "new"


def test_note_stays_internal_and_reaches_the_other_agents(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#assign boris"), "smtp", NOW)
    ingest(desk, reply_as_agent(notice, "#note\nCustomer is on the VIP plan."), "smtp", NOW)
    assert sent(desk, "agent_reply") == []
    notes = [m for m in ticket(desk)["messages"] if m["kind"] == "note"]
    assert [n["body"] for n in notes] == ["Customer is on the VIP plan."]
    copies = [m for m in sent(desk, "agent_notification", BORIS) if "internal note" in m["Subject"]]
    assert "Customer is on the VIP plan." in copies[0].get_content()


def test_canned_reply_is_inserted(desk: App) -> None:
    notice = start(desk)
    ingest(desk, reply_as_agent(notice, "#reply logs\nHello Ann,"), "smtp", NOW)
    text = sent(desk, "agent_reply")[0].get_content()
    assert text.startswith("Hello Ann,")
    assert "the log file from Settings" in text


def test_attachments_travel_both_ways(desk: App) -> None:
    customer = mail()
    customer.add_attachment(
        b"%PDF-1.4 photo", maintype="application", subtype="pdf", filename="photo.pdf"
    )
    ingest(desk, customer.as_bytes(), "smtp", NOW)
    (notice,) = sent(desk, "agent_notification", ANNA)
    names = [p.get_filename() for p in notice.iter_attachments()]
    assert names == ["photo.pdf"]
    answer = EmailMessage()
    for name in ("From", "To", "Subject"):
        answer[name] = {"From": ANNA, "To": str(notice["Reply-To"]), "Subject": "Re: x"}[name]
    answer.set_content("Here is the manual.")
    answer.add_attachment(b"manual", maintype="application", subtype="pdf", filename="manual.pdf")
    ingest(desk, answer.as_bytes(), "smtp", NOW)
    (relay,) = sent(desk, "agent_reply")
    attachments = list(relay.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["manual.pdf"]
    assert attachments[0].get_content() == b"manual"


def test_forged_agent_mail_is_refused_and_the_agent_told(desk: App) -> None:
    start(desk)
    ack = sent(desk, "autoreply")[0]
    forged = mail(
        sender=ANNA,
        to=str(ack["Reply-To"]),  # the customer's token, seen by the customer
        subject="Re: [#1] Printer is on fire",
        body="#close\nPlease wire the refund to account 123.",
    )
    result = ingest(desk, forged.as_bytes(), "smtp", NOW)
    assert result.outcome == "appended"
    assert sent(desk, "agent_reply") == []
    state = ticket(desk)
    assert state["status"] == "new"
    assert any(e["type"] == "security" for e in state["events"])
    warning = sent(desk, "forgery_notice", ANNA)[-1]
    assert "was not accepted" in warning["Subject"]


def client_fixture(name: str, notice: EmailMessage) -> bytes:
    """A reply saved from a real client's layout, addressed to this test's notification."""
    text = (DATA / "agents" / name).read_text(encoding="utf-8")
    for key, value in {
        "{REPLY_TO}": str(notice["Reply-To"]),
        "{IN_REPLY_TO}": str(notice["Message-ID"]).strip("<>"),
        "{SUBJECT}": str(notice["Subject"]),
    }.items():
        text = text.replace(key, value)
    return text.replace("\n", "\r\n").encode("utf-8")


@pytest.mark.parametrize(
    ("fixture", "relayed", "changes"),
    [
        (
            "outlook.eml",
            "Здравствуйте! Попробуйте перезапустить принтер.\n\nАнна",
            {"priority": "high", "status": "pending"},
        ),
        (
            "gmail.eml",
            "Please restart the printer and tell us whether the light turns green.",
            {"status": "pending"},
        ),
        (
            "apple-mail.eml",
            "A technician replaced the fuser unit this morning.",
            {"status": "resolved"},
        ),
    ],
)
def test_replies_from_real_clients(
    desk: App, fixture: str, relayed: str, changes: dict[str, str]
) -> None:
    notice = start(desk)
    assert ingest(desk, client_fixture(fixture, notice), "smtp", NOW).outcome == "appended"
    assert body(sent(desk, "agent_reply")[0]) == relayed
    state = ticket(desk)
    assert {k: state[k] for k in changes} == changes


def test_merge_moves_a_duplicate_into_the_original(desk: App) -> None:
    start(desk)
    duplicate = mail(subject="Printer STILL on fire", body="Did you get my mail?", cc="boss@x.org")
    assert ingest(desk, duplicate.as_bytes(), "smtp", NOW).ticket_number == 2
    second = sent(desk, "agent_notification", ANNA)[-1]
    before = len(sent(desk, "autoreply"))
    ingest(desk, reply_as_agent(second, "#merge 1"), "smtp", NOW + timedelta(minutes=5))
    summary = sent(desk, "notice", ANNA)[-1]  # of the ticket Anna wrote about
    assert str(summary["Subject"]).startswith("[#2] your mail was applied")
    assert body(summary).splitlines() == [
        "Ticket #2 is now closed.",
        "done: merged into #1, which now holds its mail and people",
    ]
    merged, original = ticket(desk, 2), ticket(desk, 1)
    assert merged["status"] == "closed" and merged["messages"] == []
    assert [e["type"] for e in merged["events"]] == ["merged_into"]
    assert "Did you get my mail?" in [m["body"].strip() for m in original["messages"]]
    assert "boss@x.org" in [p["email"] for p in original["participants"]]
    assert any(e["type"] == "merged" and e["data"]["number"] == 2 for e in original["events"])
    assert len(sent(desk, "autoreply")) == before  # nobody outside the team is told
    assert sent(desk, "agent_reply") == [] and sent(desk, "survey") == []
    follow_up = mail(subject="Re: [#2] Printer STILL on fire", body="Any news?")
    assert ingest(desk, follow_up.as_bytes(), "smtp", NOW + timedelta(hours=1)).ticket_number == 1
    answer = reply_as_agent(second, "It is fixed now.")
    landed = ingest(desk, answer, "smtp", NOW + timedelta(hours=2))
    assert landed.ticket_number == 1  # where the answer landed, not the duplicate it named
    (relay,) = sent(desk, "agent_reply")
    assert "[#1]" in relay["Subject"] and ticket(desk, 1)["status"] == "pending"


def test_reply_to_our_mail_on_a_merged_ticket_proves_its_sender(desk: App) -> None:
    """Our acknowledgement of the duplicate was mailed to the customer: answering it, with a
    colleague in copy, is a reply to the surviving ticket that copies the colleague."""
    start(desk)
    ingest(desk, mail(subject="Printer STILL on fire").as_bytes(), "smtp", NOW)
    duplicate_ack = sent(desk, "autoreply")[-1]
    notice = sent(desk, "agent_notification", ANNA)[-1]
    ingest(desk, reply_as_agent(notice, "#merge 1"), "smtp", NOW)
    answer = mail(
        subject="Re: Printer STILL on fire",
        In_Reply_To=str(duplicate_ack["Message-ID"]),
        Cc="colleague@example.org",
    )
    assert ingest(desk, answer.as_bytes(), "smtp", NOW).ticket_number == 1
    assert "colleague@example.org" in [p["email"] for p in ticket(desk, 1)["participants"]]


def test_merge_into_itself_or_nowhere_is_refused(desk: App) -> None:
    notice = start(desk)
    for arg in ("1", "99", ""):
        ingest(desk, reply_as_agent(notice, f"#merge {arg}".strip()), "smtp", NOW)
        assert ticket(desk)["status"] == "new"
    assert "which other ticket" in sent(desk, "notice", ANNA)[-1].get_content()
