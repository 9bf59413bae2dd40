"""The whole ingest path against a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import csv
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from sqlalchemy import event, select

from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.models import Inbound, Outbox, Ticket
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import DATA, mail, parse_mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def show(app: Any, number: int) -> dict[str, Any]:
    with app.db.transaction() as session:
        ticket = load_ticket(session, str(number))
        assert ticket is not None
        return detail(ticket, NOW)


def outbox_rows(app: Any) -> list[Outbox]:
    with app.db.transaction() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_new_mail_creates_ticket_with_acknowledgement(app: Any) -> None:
    first = mail(Cc="Bob <bob@example.org>, support@example.com")
    result = ingest(app, first.as_bytes(), "test", NOW)
    assert (result.outcome, result.ticket_number, result.queued_mail) == ("ticket_created", 1, 1)
    ticket = show(app, 1)
    assert ticket["status"] == "new"
    assert ticket["requester"] == "ann@example.org"
    assert [p["email"] for p in ticket["participants"]] == ["ann@example.org", "bob@example.org"]
    assert ticket["first_response_due"] == (NOW + timedelta(hours=8)).isoformat()
    kinds = [(m["direction"], m["kind"]) for m in ticket["messages"]]
    assert kinds == [("in", "customer"), ("out", "autoreply")]
    assert {"created", "autoreply_queued"} <= {e["type"] for e in ticket["events"]}
    (row,) = outbox_rows(app)
    assert row.recipients == ["ann@example.org"]
    ack = parse_mail(row.content)
    assert "[#1]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in ack["References"]


def test_ticket_numbers_are_sequential(app: Any) -> None:
    numbers = [
        ingest(app, mail(subject=f"q{i}").as_bytes(), "test", NOW).ticket_number for i in range(5)
    ]
    assert numbers == [1, 2, 3, 4, 5]


def test_same_message_twice_creates_one_ticket(app: Any) -> None:
    raw = mail().as_bytes()
    assert ingest(app, raw, "test", NOW).outcome == "ticket_created"
    again = ingest(app, raw, "test", NOW)
    assert again.outcome == "duplicate"
    relayed = b"Received: from relay2.example.org by mx; Mon, 23 Nov 2026 10:01:00 +0000\r\n" + raw
    assert ingest(app, relayed, "test", NOW).outcome == "duplicate"
    with app.db.transaction() as session:
        assert session.scalar(select(Ticket.number).order_by(Ticket.number.desc())) == 1
        statuses = sorted(session.scalars(select(Inbound.status)))
    assert statuses == ["duplicate", "ticket_created"]
    assert len(outbox_rows(app)) == 1


def test_reply_by_subject_tag_from_participant_joins_ticket(app: Any) -> None:
    ingest(app, mail().as_bytes(), "test", NOW)
    reply = mail(subject="Re: [#1] Printer is on fire", body="Still burning.")
    result = ingest(app, reply.as_bytes(), "test", NOW + timedelta(minutes=5))
    assert (result.outcome, result.ticket_number, result.queued_mail) == ("appended", 1, 0)
    ticket = show(app, 1)
    assert [m["kind"] for m in ticket["messages"]] == ["customer", "autoreply", "customer"]
    assert ticket["events"][-1]["data"]["via"] == "subject tag"


def test_reply_by_in_reply_to_our_acknowledgement(app: Any) -> None:
    ingest(app, mail().as_bytes(), "test", NOW)
    ack = parse_mail(outbox_rows(app)[0].content)
    reply = mail(subject="Re: something else", In_Reply_To=ack["Message-ID"])
    result = ingest(app, reply.as_bytes(), "test", NOW)
    assert (result.outcome, result.ticket_number) == ("appended", 1)


def test_reply_with_our_token_adds_its_copies(app: Any) -> None:
    ingest(app, mail(Cc="bob@example.org").as_bytes(), "test", NOW)
    ack = parse_mail(outbox_rows(app)[0].content)
    reply = mail(subject="Re: [#1] Printer", to=str(ack["Reply-To"]), Cc="carol@example.org")
    assert ingest(app, reply.as_bytes(), "test", NOW).outcome == "appended"
    emails = [p["email"] for p in show(app, 1)["participants"]]
    assert emails == ["ann@example.org", "bob@example.org", "carol@example.org"]


def test_reply_to_a_message_id_we_sent_the_sender_adds_its_copies(app: Any) -> None:
    ingest(app, mail().as_bytes(), "test", NOW)
    ack = parse_mail(outbox_rows(app)[0].content)
    reply = mail(subject="Re: Printer", In_Reply_To=str(ack["Message-ID"]), Cc="carol@example.org")
    ingest(app, reply.as_bytes(), "test", NOW)
    assert [p["email"] for p in show(app, 1)["participants"]] == [
        "ann@example.org",
        "carol@example.org",
    ]


def test_reply_by_subject_tag_alone_adds_nobody(app: Any) -> None:
    """A participant's mail threads by its [#N], but its copies join only by proof."""
    ingest(app, mail(Cc="bob@example.org").as_bytes(), "test", NOW)
    ack = parse_mail(outbox_rows(app)[0].content)
    reply = mail(
        sender="bob@example.org",  # the ack went to ann alone: its Message-ID is no proof for bob
        subject="Re: [#1] Printer",
        In_Reply_To=str(ack["Message-ID"]),
        Cc="carol@example.org",
    )
    assert ingest(app, reply.as_bytes(), "test", NOW).outcome == "appended"
    ticket = show(app, 1)
    assert [p["email"] for p in ticket["participants"]] == ["ann@example.org", "bob@example.org"]
    (event,) = [e for e in ticket["events"] if e["type"] == "reply"]
    assert event["data"]["participants_withheld"] == ["carol@example.org"]


def test_stranger_quoting_a_ticket_number_gets_a_new_ticket(app: Any) -> None:
    ingest(app, mail().as_bytes(), "test", NOW)
    stranger = mail(sender="mallory@evil.example", subject="Re: [#1] Printer is on fire")
    result = ingest(app, stranger.as_bytes(), "test", NOW)
    assert (result.outcome, result.ticket_number) == ("ticket_created", 2)
    second = show(app, 2)
    assert second["related_ticket"] is not None
    assert "possibly_related" in [e["type"] for e in second["events"]]
    assert [m["from"] for m in show(app, 1)["messages"] if m["direction"] == "in"] == [
        "ann@example.org"
    ]


def test_reply_to_closed_ticket_reopens_within_window(app: Any) -> None:
    ingest(app, mail().as_bytes(), "test", NOW)
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket))
        ticket.status, ticket.closed_at = "closed", NOW
    reply = mail(subject="Re: [#1] Printer", body="It is back")
    assert ingest(app, reply.as_bytes(), "test", NOW + timedelta(days=3)).outcome == "appended"
    reopened = show(app, 1)
    assert (reopened["status"], reopened["reopen_count"]) == ("open", 1)
    late = mail(subject="Re: [#1] Printer", body="Again, months later")
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket))
        ticket.status, ticket.closed_at = "closed", NOW
    result = ingest(app, late.as_bytes(), "test", NOW + timedelta(days=60))
    assert (result.outcome, result.ticket_number) == ("ticket_created", 2)
    assert show(app, 2)["related_ticket"] == reopened["id"]


def test_machine_mail_is_recorded_but_never_a_ticket_nor_answered(app: Any) -> None:
    cases = [
        mail(Auto_Submitted="auto-replied", subject="Automatic reply: Printer"),
        mail(Precedence="bulk", subject="Newsletter"),
        mail(List_Id="<users.lists.example.org>", subject="Digest"),
        mail(sender="MAILER-DAEMON@mx.example.org", subject="Undelivered Mail Returned to Sender"),
        mail(sender="support@example.com", subject="our own mail"),
    ]
    for message in cases:
        result = ingest(app, message.as_bytes(), "test", NOW)
        assert result.outcome == "suppressed", (message["Subject"], result)
        assert result.queued_mail == 0
    assert outbox_rows(app) == []
    with app.db.transaction() as session:
        assert session.scalar(select(Ticket)) is None


def test_unusable_mail_is_quarantined_and_kept(app: Any) -> None:
    raw = b"Subject: who sent this?\r\n\r\nno sender anywhere\r\n"
    result = ingest(app, raw, "test", NOW)
    assert result.outcome == "quarantined"
    assert "sender" in result.reason
    with app.db.transaction() as session:
        row = session.scalar(select(Inbound))
    assert row.status == "quarantined"
    assert app.raw.get(row.sha256) == raw


def test_autoreply_rate_limit_per_sender(app: Any) -> None:
    for i in range(7):
        ingest(app, mail(subject=f"question {i}").as_bytes(), "test", NOW + timedelta(minutes=i))
    assert len(outbox_rows(app)) == 5
    events = show(app, 7)["events"]
    suppressed = [e for e in events if e["type"] == "autoreply_suppressed"]
    assert suppressed and "rate" in suppressed[0]["data"]["reason"]


def test_concurrent_ingest_gives_unique_numbers(app: Any) -> None:
    results: list[int | None] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                raw = mail(subject=f"w{n}-{i}").as_bytes()
                results.append(ingest(app, raw, "test", NOW).ticket_number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(n for n in results if n is not None) == list(range(1, 21))


def test_a_reply_costs_the_same_statements_however_long_the_ticket(app: Any) -> None:
    """Appending must not read a ticket's history: the 30th reply asks the database what
    the 2nd did, and no statement reads the messages or events of the ticket."""
    ingest(app, mail().as_bytes(), "test", NOW)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    def reply(i: int) -> list[str]:
        statements.clear()
        raw = mail(subject="Re: [#1] Printer", body=f"Update {i}.").as_bytes()
        assert ingest(app, raw, "test", NOW + timedelta(minutes=i)).outcome == "appended"
        return list(statements)

    event.listen(app.db.engine, "before_cursor_execute", record)
    try:
        second = reply(1)
        for i in range(2, 30):
            reply(i)
        thirtieth = reply(30)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", record)
    assert thirtieth == second
    reads = [
        s for s in second if s.startswith("SELECT") and ("FROM messages" in s or "FROM events" in s)
    ]
    assert reads == [s for s in reads if "messages.message_id IN" in s]
    assert len(show(app, 1)["messages"]) == 32


MACHINE = list(
    csv.DictReader((DATA / "machine" / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
)


@pytest.mark.parametrize("row", MACHINE, ids=[r["path"] for r in MACHINE])
def test_machine_mail_without_list_headers_gets_no_acknowledgement(
    app: Any, row: dict[str, str]
) -> None:
    result = ingest(app, (DATA / "machine" / row["path"]).read_bytes(), "test", NOW)
    assert (result.outcome, result.queued_mail) == ("suppressed", 0)
    assert outbox_rows(app) == []
    with app.db.transaction() as session:
        assert session.scalar(select(Ticket)) is None


@pytest.mark.parametrize("row", MACHINE, ids=[r["path"] for r in MACHINE])
def test_machine_mail_threaded_onto_a_ticket_is_recorded_there(
    app: Any, row: dict[str, str]
) -> None:
    """The same mail sent from the ticket's requester with its tag: an event, never an answer."""
    ingest(app, mail().as_bytes(), "test", NOW)
    machine = message_from_bytes((DATA / "machine" / row["path"]).read_bytes())
    display = machine["From"].split("<")[0].strip() if "<" in machine["From"] else ""
    machine.replace_header("From", f"{display} <ann@example.org>".strip())
    machine.replace_header("Subject", f"[#1] {machine['Subject']}")
    result = ingest(app, machine.as_bytes(), "test", NOW + timedelta(minutes=1))
    assert (result.outcome, result.ticket_number, result.queued_mail) == ("suppressed", 1, 0)
    (event,) = [e for e in show(app, 1)["events"] if e["type"] == "automatic_mail"]
    assert event["data"]["kind"] == row["kind"]
    assert len(outbox_rows(app)) == 1  # the acknowledgement of the first mail, no other


def test_undecodable_subject_word_still_makes_a_ticket(app: Any) -> None:
    raw = (
        b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\n"
        b"Subject: Printer =?utf-8?B?SGVsbG8gd29ybGQhx?= broken\r\n"
        b"Message-ID: <bad-word@example.org>\r\n\r\nThe printer is broken.\r\n"
    )
    result = ingest(app, raw, "test", NOW)
    assert (result.outcome, result.ticket_number) == ("ticket_created", 1)
    ticket = show(app, 1)
    assert ticket["subject"] == "Printer =?utf-8?B?SGVsbG8gd29ybGQhx?= broken"
    (created,) = [e for e in ticket["events"] if e["type"] == "created"]
    assert any("undecodable encoded word" in d for d in created["data"]["defects"])
