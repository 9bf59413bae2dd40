"""The IMAP poller against a real Dovecot and a real App (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from postdesk.config.errors import ConfigError
from postdesk.config.schema import OAuth2
from postdesk.daemon import clock
from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.runners import imap
from postdesk.daemon.runners.imap import Poller, Timing
from postdesk.store import mailboxes
from postdesk.store.models import Inbound, MailboxState, Outbox, Ticket
from tests.helpers import mail
from tests.imap_server import PASSWORD, USER, Dovecot

FAST = Timing(
    lease_ttl=timedelta(seconds=5),
    renew_every=0.2,
    idle_check=0.05,
    max_backoff=0.3,
    auth_backoff=60.0,
    timeout=10.0,
)
WAIT = 20.0
POISON = b"Subject: who sent this?\r\n\r\nno sender anywhere\r\n"


@pytest.fixture
def make_app(
    open_app: Callable[..., App], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., App]:
    """An App whose one mailbox "support" is the Dovecot user's, with overrides."""
    monkeypatch.setenv("POSTDESK_TEST_IMAP_PASSWORD", PASSWORD)

    def make(**mailbox: Any) -> App:
        config = {
            "name": "support",
            "host": "127.0.0.1",
            "port": dovecot.port,
            "security": "none",
            "username": USER,
            "password_env": "POSTDESK_TEST_IMAP_PASSWORD",
            "poll_interval": "1h",  # only IDLE can deliver in time
            **mailbox,
        }
        return open_app(mailboxes=[config], admin_address="admin@example.com")

    return make


@contextmanager
def running(
    app: App, holder: str = "test", on_queued: Callable[[], None] = lambda: None
) -> Iterator[Poller]:
    stop = threading.Event()
    poller = Poller(app, app.settings.mailboxes[0], on_queued, stop, holder, FAST)
    thread = threading.Thread(target=poller.run)
    thread.start()
    try:
        yield poller
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the poller did not stop promptly"


def count(app: App, model: Any) -> int:
    with app.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def state(app: App) -> MailboxState:
    with app.db.transaction() as session:
        row = session.get(MailboxState, "support")
        assert row is not None
        return row


def test_new_mail_during_idle_gets_a_ticket_and_an_ack(make_app: Any, dovecot: Dovecot) -> None:
    app = make_app()
    woken = threading.Event()
    with running(app, on_queued=woken.set) as poller:
        assert poller.wait(lambda p: p.idling, WAIT)
        dovecot.append(mail().as_bytes())
        assert poller.wait(lambda p: p.handled == 1, WAIT)
        assert woken.is_set()
    assert count(app, Ticket) == 1
    assert count(app, Outbox) == 1
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids("Processed")) == 1
    row = state(app)
    assert row.last_uid == 1 and row.uidvalidity and row.last_success_at
    assert row.lease_holder is None  # released on stop


def test_message_is_moved_only_after_its_ticket_exists(
    make_app: Any, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    tickets_at_move: list[int] = []
    real_move = imap._move

    def spy(client: Any, uids: list[int], folder: str) -> None:
        tickets_at_move.append(count(app, Ticket))
        real_move(client, uids, folder)

    monkeypatch.setattr(imap, "_move", spy)
    dovecot.append(mail().as_bytes())
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 1, WAIT)
    assert tickets_at_move == [1]


def test_crash_between_commit_and_move_creates_nothing_twice(
    make_app: Any, dovecot: Dovecot
) -> None:
    """The first run committed the ticket and died before the move: the restart files it."""
    app = make_app()
    raw = mail().as_bytes()
    dovecot.append(raw)
    assert ingest(app, raw, "imap:support").outcome == "ticket_created"
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 1, WAIT)
    assert count(app, Ticket) == 1
    assert count(app, Outbox) == 1
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids("Processed")) == 1


def test_uidvalidity_change_rescans_without_duplicates(make_app: Any, dovecot: Dovecot) -> None:
    app = make_app(folder="Support", after_import="seen")
    first = [mail(subject=f"question {i}").as_bytes() for i in range(2)]
    for raw in first:
        dovecot.append(raw, "Support")
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 2, WAIT)
    old = state(app).uidvalidity
    with dovecot.client() as client:
        client.delete_folder("Support")
        client.create_folder("Support")
    for raw in [*first, mail(subject="question 3").as_bytes()]:
        dovecot.append(raw, "Support")
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 3, WAIT)
    assert state(app).uidvalidity != old
    assert count(app, Ticket) == 3
    assert len(dovecot.uids("Support")) == 3  # "seen" leaves them there


def test_poison_message_goes_to_quarantine_and_the_next_becomes_a_ticket(
    make_app: Any, dovecot: Dovecot
) -> None:
    app = make_app()
    dovecot.append(POISON)
    dovecot.append(mail().as_bytes())
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 2, WAIT)
    assert count(app, Ticket) == 1
    assert len(dovecot.uids("Quarantine")) == 1
    assert len(dovecot.uids("Processed")) == 1


def test_oversized_message_is_left_and_reported(
    make_app: Any, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.settings = app.settings.model_copy(
        update={"limits": app.settings.limits.model_copy(update={"max_message_bytes": 2048})}
    )
    dovecot.append(mail(body="x" * 5000).as_bytes())
    dovecot.append(mail().as_bytes())
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 2, WAIT)
    assert count(app, Ticket) == 1
    assert dovecot.uids("INBOX") == [1]
    assert "message too large" in caplog.text
    with app.db.transaction() as session:
        kinds = list(session.scalars(select(Outbox.kind)))
    assert sorted(kinds) == ["alert", "autoreply"]


def test_server_restart_mid_session_reconnects(make_app: Any, dovecot: Dovecot) -> None:
    app = make_app()
    with running(app) as poller:
        assert poller.wait(lambda p: p.idling, WAIT)
        dovecot.stop()
        assert poller.wait(lambda p: p.retry_in is not None, WAIT)  # a reconnect failed
        dovecot.start()
        assert poller.wait(lambda p: p.connections == 2 and p.idling, WAIT)
        dovecot.append(mail().as_bytes())
        assert poller.wait(lambda p: p.handled == 1, WAIT)
    assert count(app, Ticket) == 1


def append_backlog(dovecot: Dovecot, total: int) -> None:
    with dovecot.client() as client:
        for start in range(0, total, 200):
            client.multiappend(
                "INBOX",
                [mail(subject=f"backlog {i}").as_bytes() for i in range(start, start + 200)],
            )


def test_server_restart_during_a_fetch_loses_and_repeats_nothing(
    make_app: Any, dovecot: Dovecot
) -> None:
    app = make_app()
    total = 600
    append_backlog(dovecot, total)
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled >= 50, WAIT)
        dovecot.stop()  # while the backlog is being fetched and ingested
        assert poller.wait(lambda p: p.retry_in is not None, WAIT)
        assert 50 <= poller.handled < total
        dovecot.start()
        assert poller.wait(lambda p: p.connections >= 2 and p.idling, 120)
    assert count(app, Ticket) == total
    assert count(app, Inbound) == total
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids("Processed")) == total


@pytest.mark.slow
def test_backlog_drains_in_chunks(make_app: Any, dovecot: Dovecot) -> None:
    app = make_app()
    total = 2000
    append_backlog(dovecot, total)
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == total, 120)
    assert count(app, Ticket) == total
    assert dovecot.uids("INBOX") == []
    assert state(app).last_uid == total


def test_second_poller_waits_while_the_lease_is_held(make_app: Any, dovecot: Dovecot) -> None:
    app = make_app()
    with running(app, holder="first") as first:
        assert first.wait(lambda p: p.idling, WAIT)
        with running(app, holder="second") as second:
            assert second.wait(lambda p: p.standby, WAIT)
            dovecot.append(mail(subject="for the first").as_bytes())
            assert first.wait(lambda p: p.handled == 1, WAIT)
            assert second.connections == 0 and second.handled == 0
            assert state(app).lease_holder == "first"
    # The first is gone and its lease expires: another instance takes over.
    with app.db.transaction() as session:
        assert mailboxes.take_lease(session, "support", "crashed", clock.now(), timedelta(0))
    dovecot.append(mail(subject="for the second").as_bytes())
    with running(app, holder="second") as second:
        assert second.wait(lambda p: p.handled == 1, WAIT)
    assert count(app, Ticket) == 2


def test_wrong_password_is_reported_and_retried_slowly(
    make_app: Any,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    monkeypatch.setenv("POSTDESK_TEST_IMAP_PASSWORD", "wrong")
    with running(app) as poller:
        assert poller.wait(lambda p: p.retry_in is not None, WAIT)
        assert poller.retry_in >= FAST.auth_backoff
    assert "check the credentials" in caplog.text
    assert "LoginError" in state(app).last_error
    with app.db.transaction() as session:
        assert session.scalar(select(Outbox.kind)) == "alert"


def test_oauth2_token_sources(tmp_path: Path) -> None:
    assert imap.oauth2_token(OAuth2(token_command="echo tok123"), "x") == "tok123"
    (tmp_path / "token").write_text("tok456\n")
    assert imap.oauth2_token(OAuth2(token_file=tmp_path / "token"), "x") == "tok456"
    with pytest.raises(ConfigError, match="token_command: exit 3"):
        imap.oauth2_token(OAuth2(token_command="echo no >&2; exit 3"), "x")
    with pytest.raises(ValueError, match="exactly one"):
        OAuth2()


def test_inbound_rows_name_the_mailbox(make_app: Any, dovecot: Dovecot) -> None:
    app = make_app()
    dovecot.append(mail().as_bytes())
    with running(app) as poller:
        assert poller.wait(lambda p: p.handled == 1, WAIT)
    with app.db.transaction() as session:
        assert session.scalar(select(Inbound.source)) == "imap:support"
