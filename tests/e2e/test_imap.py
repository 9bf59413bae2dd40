"""The real daemon polling a real Dovecot: IDLE in, acknowledgement out, killed mid-way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from postdesk.daemon import clock
from postdesk.daemon.app import App
from postdesk.store.models import MailboxState, Outbox, Ticket
from tests.conftest import Daemon, Sink
from tests.helpers import free_port, mail, read_until
from tests.imap_server import PASSWORD, USER, Dovecot


@pytest.fixture
def imap_config(
    write_config: Callable[..., Path],
    smtp_sink: tuple[Sink, int],
    dovecot: Dovecot,
    tmp_path: Path,
) -> Path:
    (tmp_path / "imap.pass").write_text(PASSWORD + "\n")
    return write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": smtp_sink[1]}},
        mailboxes=[
            {
                "name": "support",
                "host": "127.0.0.1",
                "port": dovecot.port,
                "security": "none",
                "username": USER,
                "password_file": str(tmp_path / "imap.pass"),
            }
        ],
    )


def status(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "status", "--json"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return dict(json.loads(done.stdout))


def test_idle_mail_becomes_ticket_and_ack_and_sigterm_is_prompt(
    imap_config: Path,
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    dovecot: Dovecot,
) -> None:
    sink, _ = smtp_sink
    daemon = start_daemon(imap_config)
    read_until(daemon.process, "imap connected", daemon.log, timeout=30)
    dovecot.append(mail(subject="Printer on fire").as_bytes())
    (ack,) = sink.wait_for(1)
    assert "[#1]" in ack["Subject"]
    read_until(daemon.process, "message ingested", daemon.log, timeout=10)
    (box,) = status(imap_config)["mailboxes"]
    assert box["name"] == "support" and box["connected"] is True
    assert box["lease_holder"] and box["uidvalidity"]
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=10) == 0
    (box,) = status(imap_config)["mailboxes"]
    assert box["connected"] is False and box["lease_holder"] is None


def test_killed_daemon_resumes_without_duplicates(
    imap_config: Path,
    start_daemon: Callable[[Path], Daemon],
    dovecot: Dovecot,
) -> None:
    """SIGKILL right after the commit: the restarted daemon files the message, once."""
    daemon = start_daemon(imap_config)
    read_until(daemon.process, "imap connected", daemon.log, timeout=30)
    dovecot.append(mail().as_bytes())
    read_until(daemon.process, "message ingested", daemon.log, timeout=10)
    daemon.process.kill()
    daemon.process.wait(timeout=10)
    left_behind = dovecot.uids("INBOX")
    app = App.open(str(imap_config))
    with app.db.transaction() as session:  # the dead holder's lease runs out
        row = session.get(MailboxState, "support")
        assert row is not None
        row.lease_expires_at = clock.now() - timedelta(seconds=1)
    daemon = start_daemon(imap_config)
    read_until(daemon.process, "imap connected", daemon.log, timeout=30)
    if left_behind:
        read_until(daemon.process, "imap mailbox drained", daemon.log, timeout=10)
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids("Processed")) == 1
    with app.db.transaction() as session:  # one acknowledgement queued, however it ends
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(Outbox)) == 1
    app.db.dispose()
