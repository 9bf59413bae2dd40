"""Agents open tickets for customers from their mail client: by forwarding the customer's
mail (attached, or inline as each client writes it, in English and Russian) and by `#to`,
through ingest() as the listener and the pipe call it."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.sweeps.run import run
from postdesk.store.models import Outbox, Ticket
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import DATA, mail, parse_mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ANNA = "anna@example.com"
BORIS = "boris@example.com"
SUPPORT = "support@example.com"
BRAND2 = "help@brand2.example"
CUSTOMER = "ann@example.org"
FORWARDS = DATA / "forwards"
ROWS = list(csv.DictReader((FORWARDS / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
TRUSTED = (
    b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    b"Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTPS id 4Xq2Lm0Zc9z9sRf\r\n"
)
"""What the desk's MX writes above a mail it received from the agent's signing server."""


@pytest.fixture
def open_desk(open_app: Callable[..., App]) -> Callable[..., App]:
    def open_(**overrides: Any) -> App:
        settings: dict[str, Any] = {
            "support_addresses": [
                SUPPORT,
                {
                    "address": BRAND2,
                    "name": "Brand2 Help",
                    "language": "ru",
                    "signature": "Команда Brand2",
                },
            ],
            "agents": [
                {"email": ANNA, "name": "Anna", "queues": ["general"]},
                {"email": BORIS, "name": "Boris", "queues": ["general"]},
            ],
            "agent_auth": {"trusted_authserv_ids": ["mx.example.com"]},
            "notify": {"new_ticket": True, "customer_reply": True},
            "business_hours": {"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
        }
        return open_app(**{**settings, **overrides})

    return open_


@pytest.fixture
def desk(open_desk: Callable[..., App]) -> App:
    return open_desk()


def outbox(app: App, kind: str | None = None) -> list[EmailMessage]:
    with app.db.transaction() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id))
        return [parse_mail(r.content) for r in rows if kind is None or r.kind == kind]


def addresses(message: EmailMessage, field: str) -> list[str]:
    return [a.lower() for _, a in getaddresses([str(v) for v in message.get_all(field, [])])]


def ticket(app: App, number: int = 1) -> dict[str, Any]:
    with app.db.transaction() as session:
        found = load_ticket(session, str(number))
        assert found is not None
        return detail(found, NOW)


def forward(name: str, trace: bytes = TRUSTED) -> bytes:
    return trace + (FORWARDS / name).read_bytes()


def agent_mail(body: str, subject: str = "Your order 4471", to: str = SUPPORT) -> bytes:
    return TRUSTED + mail(sender=f"Anna <{ANNA}>", to=to, subject=subject, body=body).as_bytes()


def written_at(row: dict[str, str]) -> datetime:
    """The forward's date as the desk places it: a date without a zone is desk time (UTC)."""
    written = datetime.fromisoformat(row["date"])
    return written if written.tzinfo else written.replace(tzinfo=UTC)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["path"].removesuffix(".eml"))
def test_a_forward_opens_the_customers_ticket(desk: App, row: dict[str, str]) -> None:
    result = ingest(desk, forward(row["path"]), "smtp", NOW)
    assert (result.outcome, result.ticket_number) == ("ticket_created", 1)
    view = ticket(desk)
    assert view["requester"] == row["requester"]
    assert view["subject"] == row["subject"]
    assert view["assignee"] == ANNA
    assert view["priority"] == "high"  # the agent's #priority above the forward
    assert view["status"] == "new"
    assert view["language"] == row["language"]
    assert [p["email"] for p in view["participants"]] == [row["requester"]]
    first, note = view["messages"]
    assert (first["kind"], first["direction"], first["from"]) == (
        "customer",
        "in",
        row["requester"],
    )
    assert first["author"] is None
    assert row["text"] in first["body"] and "#priority" not in first["body"]
    assert datetime.fromisoformat(first["created_at"]) == written_at(row)
    files = [a["filename"] for a in first["attachments"]]
    assert files == ([row["attachments"]] if row["attachments"] else [])
    assert (note["kind"], note["from"], note["author"]) == ("note", ANNA, ANNA)
    assert "#priority" not in note["body"] and row["text"] not in note["body"]
    assert note["body"].startswith(("She called", "Клиентка звонила"))
    assert note["attachments"] == []
    (created,) = [e for e in view["events"] if e["type"] == "created"]
    assert created["data"]["forwarded_by"] == ANNA and created["data"]["form"] == row["form"]
    mails = outbox(desk)
    assert not [m for m in mails if row["requester"] in addresses(m, "To")]
    (summary,) = mails  # the agent hears what was done; nobody else is told of it
    assert addresses(summary, "To") == [ANNA] and addresses(summary, "Cc") == []
    assert addresses(summary, "From") == [SUPPORT]
    assert f"ticket #1 opened for {row['requester']}" in summary.get_content()


def test_forward_ack_acknowledges_the_customer_from_the_brand(
    open_desk: Callable[..., App],
) -> None:
    app = open_desk(agents={"forward_ack": True, "team": [{"email": ANNA, "name": "Anna"}]})
    raw = forward("gmail_ru.eml").replace(b"To: support@example.com", b"To: " + BRAND2.encode())
    assert ingest(app, raw, "smtp", NOW).outcome == "ticket_created"
    (ack,) = outbox(app, "autoreply")
    assert addresses(ack, "From") == [BRAND2] and "Brand2 Help" in str(ack["From"])
    assert addresses(ack, "To") == ["anna.p@example.ru"] and addresses(ack, "Cc") == []
    assert "[#1]" in str(ack["Subject"])
    assert "обращени" in ack.get_content().lower()  # the Russian acknowledgement
    assert ticket(app)["language"] == "ru"


def test_without_forward_ack_the_customer_hears_nothing(desk: App) -> None:
    ingest(desk, forward("thunderbird_en.eml"), "smtp", NOW)
    assert outbox(desk, "autoreply") == []
    (suppressed,) = [e for e in ticket(desk)["events"] if e["type"] == "autoreply_suppressed"]
    assert "agents.forward_ack" in suppressed["data"]["reason"]


def test_a_rule_that_assigns_wins_over_the_forwarding_agent(
    open_desk: Callable[..., App], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: fire\n    if: {subject: [printer]}\n"
        "    then: {assignee: boris@example.com}\n",
        encoding="utf-8",
    )
    app = open_desk(rules=str(rules))
    ingest(app, forward("outlook_en.eml"), "smtp", NOW)
    assert ticket(app)["assignee"] == BORIS
    told = outbox(app, "agent_notification")
    assert [addresses(m, "To") for m in told] == [[BORIS], [BORIS]]
    assert ["new ticket" in str(m["Subject"]) for m in told] == [True, False]
    assert "She called about this too" in told[1].get_content()  # Anna's note


def test_requester_overrides_the_detected_sender(desk: App) -> None:
    raw = forward("gmail_en.eml").replace(b"#priority high", b"#requester Ann.Boss@Example.org")
    assert ingest(desk, raw, "smtp", NOW).outcome == "ticket_created"
    view = ticket(desk)
    assert view["requester"] == "ann.boss@example.org"
    assert view["messages"][0]["from"] == "ann.boss@example.org"
    assert "#requester" not in view["messages"][1]["body"]


OUTLOOK_CONTACT = (
    "#requester ann@example.org\n"
    "From the shared inbox.\n\n"
    "________________________________\n"
    "From: Ann Customer\n"
    "Sent: Monday, November 23, 2026 9:31 AM\n"
    "To: Anna\n"
    "Subject: Printer is on fire\n\n"
    "Hello,\nthe printer in room 4 is on fire again.\n"
)
"""Outlook names an address-book contact without the address."""


def test_requester_opens_a_forward_whose_sender_cannot_be_read(desk: App) -> None:
    raw = agent_mail(OUTLOOK_CONTACT, subject="FW: Printer is on fire")
    assert ingest(desk, raw, "smtp", NOW).outcome == "ticket_created"
    view = ticket(desk)
    assert (view["requester"], view["subject"]) == (CUSTOMER, "Printer is on fire")
    assert "on fire again" in view["messages"][0]["body"]


def test_an_unreadable_sender_without_requester_is_the_agents_own_mail(desk: App) -> None:
    raw = agent_mail(OUTLOOK_CONTACT.split("\n", 1)[1], subject="FW: Printer is on fire")
    result = ingest(desk, raw, "smtp", NOW)
    assert result.outcome == "ticket_created"
    view = ticket(desk)
    assert view["requester"] == ANNA
    (refused,) = [e for e in view["events"] if e["type"] == "on_behalf_refused"]
    assert "could not be read" in refused["data"]["why_not"]
    (notice,) = [m for m in outbox(desk, "notice") if "opened no ticket" in str(m["Subject"])]
    assert addresses(notice, "To") == [ANNA] and addresses(notice, "From") == [SUPPORT]
    assert "#requester ADDRESS" in notice.get_content()


def test_an_unproven_forward_is_the_agents_own_mail(desk: App) -> None:
    result = ingest(desk, forward("gmail_en.eml", trace=b""), "smtp", NOW)
    assert result.outcome == "ticket_created"
    view = ticket(desk)
    assert view["requester"] == ANNA and view["assignee"] is None
    assert not [m for m in outbox(desk) if CUSTOMER in addresses(m, "To")]
    (event,) = [e for e in view["events"] if e["type"] == "security"]
    assert (
        event["data"]["why_not"] == "no Received field of a trusted server records the mail's entry"
    )
    (warning,) = outbox(desk, "forgery_notice")
    assert addresses(warning, "To") == [ANNA] and "opened no ticket" in str(warning["Subject"])
    again = forward("gmail_en.eml", trace=b"").replace(b"<fwd@", b"<fwd2@")
    ingest(desk, again, "smtp", NOW + timedelta(minutes=1))
    assert len(outbox(desk, "forgery_notice")) == 1  # at most one warning an hour


def test_an_agents_own_mail_without_a_forward_is_as_before(desk: App) -> None:
    assert ingest(desk, agent_mail("Our VPN is down."), "smtp", NOW).outcome == "ticket_created"
    view = ticket(desk)
    assert view["requester"] == ANNA
    assert not [e for e in view["events"] if e["type"] in ("security", "on_behalf_refused")]


TO_MAIL = (
    "#to Ann Customer <Ann@Example.org>\n#priority high\n#tag billing\n\n"
    "Hello Ann,\nyour refund for order 4471 was sent today.\n\n-- \nAnna, Example support\n"
)


@pytest.mark.parametrize(
    ("support", "display", "signature"),
    [(SUPPORT, "Anna (support)", ""), (BRAND2, "Anna (Brand2 Help)", "Команда Brand2")],
    ids=["support", "brand"],
)
def test_to_opens_an_outbound_ticket(desk: App, support: str, display: str, signature: str) -> None:
    result = ingest(desk, agent_mail(TO_MAIL, to=support), "smtp", NOW)
    assert (result.outcome, result.ticket_number) == ("ticket_created", 1)
    view = ticket(desk)
    assert (view["requester"], view["subject"]) == (CUSTOMER, "Your order 4471")
    assert (view["status"], view["priority"], view["tags"]) == ("pending", "high", ["billing"])
    assert view["assignee"] == ANNA
    (sent,) = view["messages"]
    assert (sent["direction"], sent["kind"], sent["author"]) == ("out", "agent", ANNA)
    assert sent["from"] == support and sent["to"] == [CUSTOMER]
    (relay,) = outbox(desk, "agent_reply")
    assert getaddresses([str(relay["From"])]) == [(display, support)]
    assert addresses(relay, "To") == [CUSTOMER] and addresses(relay, "Cc") == []
    assert str(relay["Subject"]) == "Your order 4471 [#1]"
    assert addresses(relay, "Reply-To")[0].startswith(support.split("@")[0] + "+")
    assert relay["Message-ID"].strip("<>") == sent["message_id"]
    text = relay.get_content().replace("\r\n", "\n")
    assert text.startswith("Hello Ann,\nyour refund") and "#to" not in text and "#tag" not in text
    assert "Anna, Example support" not in text  # the agent's own signature stays behind
    assert text.rstrip().endswith(signature)
    (summary,) = outbox(desk, "notice")
    assert (
        addresses(summary, "To") == [ANNA] and "opened for ann@example.org" in summary.get_content()
    )


def test_an_outbound_ticket_waits_on_the_customer(desk: App) -> None:
    ingest(desk, agent_mail(TO_MAIL), "smtp", NOW)
    (relay,) = outbox(desk, "agent_reply")
    run(desk, NOW + timedelta(days=2, minutes=5))
    (reminder,) = outbox(desk, "reminder")
    assert addresses(reminder, "To") == [CUSTOMER] and addresses(reminder, "Cc") == []
    assert "refund for order 4471" in reminder.get_content()
    answer = mail(
        subject=f"Re: {relay['Subject']}",
        body="Thanks, it arrived.",
        to=str(relay["Reply-To"]),
        In_Reply_To=str(relay["Message-ID"]),
    )
    result = ingest(desk, answer.as_bytes(), "smtp", NOW + timedelta(days=3))
    assert (result.outcome, result.ticket_number) == ("appended", 1)
    assert ticket(desk)["status"] == "open"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("#to nobody\nHello.", "#to nobody: not an address"),
        ("#to support@example.com\nHello.", "that is a support address"),
        ("#priority high\n#to ann@example.org\nHello.", "#to must be the first line"),
        ("#to ann@example.org\n#pirority high\n", "unknown command '#pirority high'"),
        ("#to ann@example.org\n#tag x\n", "no text below the commands"),
    ],
    ids=["not-an-address", "our-address", "not-first", "unknown-command", "nothing-to-send"],
)
def test_a_to_that_cannot_be_obeyed_is_the_agents_own_mail(desk: App, body: str, why: str) -> None:
    assert ingest(desk, agent_mail(body), "smtp", NOW).outcome == "ticket_created"
    view = ticket(desk)
    assert view["requester"] == ANNA
    assert (
        why
        in next(e for e in view["events"] if e["type"] == "on_behalf_refused")["data"]["why_not"]
    )
    assert outbox(desk, "agent_reply") == []
    assert not [m for m in outbox(desk) if CUSTOMER in addresses(m, "To")]
    (notice,) = [m for m in outbox(desk, "notice") if "opened no ticket" in str(m["Subject"])]
    assert why in notice.get_content()


def test_to_in_a_reply_to_a_ticket_is_refused(desk: App) -> None:
    ingest(desk, mail().as_bytes(), "smtp", NOW)
    (told,) = [m for m in outbox(desk, "agent_notification") if addresses(m, "To") == [ANNA]]
    reply = (
        TRUSTED
        + mail(
            sender=f"Anna <{ANNA}>",
            to=str(told["Reply-To"]),
            subject=f"Re: {told['Subject']}",
            body="#to other@example.net\nWe are on it.",
        ).as_bytes()
    )
    assert ingest(desk, reply, "smtp", NOW).outcome == "appended"
    (relay,) = outbox(desk, "agent_reply")
    assert addresses(relay, "To") == [CUSTOMER]
    summary = [m for m in outbox(desk, "notice") if "applied" in str(m["Subject"])][-1]
    assert "#to other@example.net: only a new mail to a support address" in summary.get_content()
    with desk.db.transaction() as session:
        assert session.scalar(select(Ticket).where(Ticket.requester == "other@example.net")) is None
