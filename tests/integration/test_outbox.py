"""Delivery faults against real relays (aiosmtpd) and a real Maildir: a relay that is down
or refuses our login pauses all delivery and fails nothing; a ticket's mails arrive in the
order they were queued; a row that raises is retried alone until max_attempts; a Maildir
delivery repeated after a crash writes no second file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.runners.sender import deliver_due
from postdesk.store import outbox, relay
from postdesk.store.models import Outbox
from postdesk.store.outbox import Composed
from postdesk.store.schema import ensure_current
from tests.conftest import AuthSink, Sink
from tests.helpers import free_port, mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TICKETS = 3


def statuses(app: App) -> dict[str, int]:
    with app.db.transaction() as session:
        found: dict[str, int] = {}
        for row in session.scalars(select(Outbox)):
            found[row.status] = found.get(row.status, 0) + 1
        return found


def test_relay_down_then_back_delivers_each_mail_once_in_order_per_ticket(
    write_config: Callable[..., Path], database_url: str
) -> None:
    port = free_port()
    config = write_config(
        database=database_url,
        outgoing={"smtp": {"host": "127.0.0.1", "port": port}, "retry_base": "30s"},
        notify={"new_ticket": True, "customer_reply": False},
    )
    app = App.open(str(config))
    ensure_current(app.db)
    try:
        for i in range(TICKETS):
            message = mail(sender=f"customer{i}@example.org", subject=f"Question {i}")
            assert ingest(app, message.as_bytes(), "smtp", NOW).outcome == "ticket_created"
        with app.db.transaction() as session:
            queued = [(r.ticket_id, r.message_id) for r in session.scalars(select(Outbox))]
        assert len(queued) == 2 * TICKETS  # an acknowledgement and an agent notice each

        down = deliver_due(app, NOW)
        assert (down.sent, down.retried, down.failed, down.paused) == (0, 1, 0, True)
        with app.db.transaction() as session:  # the try that met the fault is not counted
            assert {r.attempts for r in session.scalars(select(Outbox))} == {0}

        sink = Sink()
        relay_server = Controller(sink, hostname="127.0.0.1", port=port)
        relay_server.start()
        try:
            early = deliver_due(app, NOW + timedelta(seconds=5))
            assert (early.sent, early.paused) == (0, True)  # the pause holds for everyone
            back = deliver_due(app, NOW + timedelta(minutes=1))
            assert (back.sent, back.paused) == (2 * TICKETS, False)
            assert deliver_due(app, NOW + timedelta(days=1)).sent == 0
            arrived = [str(m["Message-ID"]).strip("<>") for m in sink.wait_for(2 * TICKETS)]
        finally:
            relay_server.stop()
    finally:
        app.db.dispose()
    assert sorted(arrived) == sorted(mid for _, mid in queued)  # each once, none lost
    for ticket_id in {t for t, _ in queued}:
        in_queue = [mid for t, mid in queued if t == ticket_id]
        assert [mid for mid in arrived if mid in in_queue] == in_queue


def test_relay_refusing_the_login_pauses_fails_nothing_and_delivers_all_once_fixed(
    open_app: Callable[..., App], auth_sink: tuple[AuthSink, int], tmp_path: Path
) -> None:
    """A wrong relay password used to fail every queued mail for good, one after another."""
    sink, port = auth_sink
    secret = tmp_path / "relay.pass"
    secret.write_text("wrong\n")
    app = open_app(
        admin_address="admin@example.com",
        outgoing={
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "username": "postdesk",
                "password_file": str(secret),
            },
            "max_attempts": 2,
            "retry_base": "30s",
            "retry_max": "10m",
        },
    )
    for i in range(TICKETS):
        ingest(app, mail(sender=f"c{i}@example.org", subject=f"Q {i}").as_bytes(), "smtp", NOW)
    moments = [NOW + timedelta(minutes=15 * n) for n in range(8)]  # far beyond max_attempts
    runs = [deliver_due(app, at) for at in moments]
    assert all(r.paused and r.sent == 0 and r.failed == 0 for r in runs)
    assert sink.refused_logins >= len(moments) and sink.messages == []
    with app.db.transaction() as session:  # the admin's alerts (one an hour) wait with them
        alerts = len(session.scalars(select(Outbox).where(Outbox.kind == "alert")).all())
    assert alerts == 2 and statuses(app) == {"queued": TICKETS + alerts}
    with app.db.transaction() as session:
        state = relay.view(session, f"smtp:127.0.0.1:{port}", moments[-1])
    assert state["paused"] and state["relay_failures"] == len(moments)
    assert "authentication refused: 535" in state["last_relay_error"]

    secret.write_text("right\n")
    later = moments[-1] + timedelta(hours=1)
    fixed = deliver_due(app, later)
    assert (fixed.sent, fixed.failed, fixed.paused) == (TICKETS + alerts, 0, False)
    delivered = sink.wait_for(TICKETS + alerts)
    alert = next(m for m in delivered if m["To"] == "admin@example.com")
    assert "outgoing mail paused" in alert["Subject"] and "535" in alert["Subject"]
    assert statuses(app) == {"sent": TICKETS + alerts}
    with app.db.transaction() as session:
        assert relay.view(session, f"smtp:127.0.0.1:{port}", later)["relay_failures"] == 0


def test_a_row_that_raises_is_retried_alone_and_fails_after_max_attempts(
    open_app: Callable[..., App], smtp_sink: tuple[Sink, int]
) -> None:
    """An internationalised address on a relay without SMTPUTF8 makes smtplib raise
    UnicodeEncodeError: that row counts tries and ends failed; the others are delivered."""
    sink, port = smtp_sink
    app = open_app(
        outgoing={"smtp": {"host": "127.0.0.1", "port": port}, "max_attempts": 2},
    )
    poison = mail(sender="пётр@example.org", subject="Вопрос").as_bytes()
    assert ingest(app, poison, "smtp", NOW).outcome == "ticket_created"
    assert ingest(app, mail(subject="Printer").as_bytes(), "smtp", NOW).outcome == "ticket_created"
    first = deliver_due(app, NOW)
    assert (first.sent, first.retried, first.failed, first.paused) == (1, 1, 0, False)
    second = deliver_due(app, NOW + timedelta(hours=2))
    assert (second.sent, second.failed) == (0, 1)
    assert len(sink.wait_for(1)) == 1
    with app.db.transaction() as session:
        row = session.scalars(select(Outbox).where(Outbox.status == "failed")).one()
        assert row.recipients == ["пётр@example.org"] and row.attempts == 2
        assert "UnicodeEncodeError" in row.last_error


def test_maildir_delivery_repeated_after_a_crash_writes_one_file(
    open_app: Callable[..., App], tmp_path: Path
) -> None:
    """A crash between the file and the mark leaves the row queued and claimed; its next try
    finds its own file, writes it again in its place, and marks it."""
    app: Any = open_app()
    assert ingest(app, mail().as_bytes(), "smtp", NOW).outcome == "ticket_created"
    assert deliver_due(app, NOW, holder="mail1").sent == 1
    with app.db.transaction() as session:  # the state a kill -9 before the mark leaves
        row = session.scalars(select(Outbox)).one()
        row.status, row.claimed_by, row.next_attempt_at = "queued", "mail1", NOW
    assert deliver_due(app, NOW + timedelta(minutes=5)).sent == 1
    files = list((tmp_path / "sent" / "new").iterdir())
    assert len(files) == 1 and files[0].name.startswith(f"postdesk-outbox-{row.id}-")
    assert statuses(app) == {"sent": 1}


def test_maildir_delivery_repeated_after_a_reader_moved_the_file_writes_none(
    open_app: Callable[..., App], tmp_path: Path
) -> None:
    """A mail reader moves a delivered file to ``cur/`` with its flags; a repeated try after
    a crash finds it there too."""
    app: Any = open_app()
    assert ingest(app, mail().as_bytes(), "smtp", NOW).outcome == "ticket_created"
    assert deliver_due(app, NOW, holder="mail1").sent == 1
    (delivered,) = (tmp_path / "sent" / "new").iterdir()
    delivered.rename(tmp_path / "sent" / "cur" / f"{delivered.name}:2,S")
    with app.db.transaction() as session:
        row = session.scalars(select(Outbox)).one()
        row.status, row.claimed_by, row.next_attempt_at = "queued", "mail1", NOW
    assert deliver_due(app, NOW + timedelta(minutes=5)).sent == 1
    assert list((tmp_path / "sent" / "new").iterdir()) == []
    assert [f.name for f in (tmp_path / "sent" / "cur").iterdir()] == [f"{delivered.name}:2,S"]
    assert statuses(app) == {"sent": 1}


class Picky(Sink):
    """A relay that answers RCPT per address from a table (250 for the rest)."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__()
        self.answers = answers

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        answer = self.answers.get(address, "250 OK")
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        ({"a@example.org": "550 5.1.1 no such user", "b@example.org": "550 5.1.1 no"}, "failed"),
        ({"a@example.org": "552 5.2.2 mailbox full", "b@example.org": "550 5.1.1 no"}, "retry"),
        ({"a@example.org": "450 4.2.1 try later", "b@example.org": "451 4.3.0 later"}, "paused"),
        ({"a@example.org": "550 5.1.1 no such user"}, "sent"),
    ],
    ids=["all-refused", "mailbox-full", "4xx", "one-refused"],
)
def test_recipient_answers_decide_between_failing_retrying_and_pausing(
    open_app: Callable[..., App], answers: dict[str, str], outcome: str
) -> None:
    relay_server_port = free_port()
    sink = Picky(answers)
    controller = Controller(sink, hostname="127.0.0.1", port=relay_server_port)
    controller.start()
    try:
        app = open_app(outgoing={"smtp": {"host": "127.0.0.1", "port": relay_server_port}})
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "support@example.com", "x", "Hi"
        message["Message-ID"] = "<n1@example.com>"
        message.set_content("Hello")
        mail = Composed(message.as_bytes(), "support@example.com", "n1@example.com")
        with app.db.transaction() as session:
            outbox.enqueue(
                session,
                mail=mail,
                kind="notice",
                recipients=["a@example.org", "b@example.org"],
                now=NOW,
            )
        stats = deliver_due(app, NOW)
        with app.db.transaction() as session:
            row = session.scalars(select(Outbox)).one()
            status, attempts, error = row.status, row.attempts, row.last_error
    finally:
        controller.stop()
    if outcome == "failed":
        assert (stats.failed, status) == (1, "failed") and "all recipients refused" in error
    elif outcome == "retry":  # 552 is temporary for this mail alone: no pause, a try counted
        assert (stats.retried, stats.paused, status, attempts) == (1, False, "queued", 1)
    elif outcome == "paused":
        assert (stats.paused, status, attempts) == (True, "queued", 0)
    else:  # b@ took it: sent, and what a@ got is noted on the row
        assert (stats.sent, status) == (1, "sent")
        assert error == "a@example.org: 550 5.1.1 no such user"
        assert sink.messages[0][1] == ["b@example.org"]
