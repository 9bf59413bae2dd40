"""The real daemon polling a real Dovecot: IDLE in, acknowledgement out, killed mid-way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from postdesk.daemon.app import App
from postdesk.store.models import Outbox, Ticket
from tests.conftest import Daemon, Sink
from tests.helpers import free_port, mail, parse_mail, read_until
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


def test_killed_daemon_restarted_under_its_name_resumes_at_once_and_sends_nothing_twice(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    dovecot: Dovecot,
    tmp_path: Path,
) -> None:
    """SIGKILL right after the commit, restart at once under the same instance name: the
    mailbox lease is this instance's, so polling resumes within seconds (not after the 90 s
    lease), the message is filed once, and every queued mail is one file in the Maildir."""
    (tmp_path / "imap.pass").write_text(PASSWORD + "\n")
    config = write_config(
        instance="mail1",
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        notify={"new_ticket": True, "customer_reply": False},
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
    daemon = start_daemon(config)
    read_until(daemon.process, "imap connected", daemon.log, timeout=30)
    dovecot.append(mail().as_bytes())
    # mail that lands between a poll and the IDLE after it waits for the next cycle (30 s)
    read_until(daemon.process, "message ingested", daemon.log, timeout=40)
    daemon.process.kill()
    daemon.process.wait(timeout=10)
    (box,) = status(config)["mailboxes"]
    assert box["lease_holder"] == "mail1"  # the dead process's lease still runs
    restarted = time.monotonic()
    daemon = start_daemon(config)
    read_until(daemon.process, "imap connected", daemon.log, timeout=15)
    resumed_after = time.monotonic() - restarted
    assert resumed_after < 15, resumed_after
    dovecot.append(mail(sender="bob@example.org", subject="Second").as_bytes())
    read_until(daemon.process, "outcome=ticket_created ticket=2", daemon.log, timeout=40)
    read_until(daemon.process, "imap mailbox drained", daemon.log, timeout=10)
    app = App.open(str(config))
    with app.db.transaction() as session:
        rows = list(session.scalars(select(Outbox)))
        assert session.scalar(select(func.count()).select_from(Ticket)) == 2
    app.db.dispose()
    assert len(rows) == 4  # an acknowledgement and an agent notification per ticket
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Processed")) == 2
    written = [parse_mail(f.read_bytes()) for f in (tmp_path / "sent" / "new").iterdir()]
    assert sorted(str(m["Message-ID"]).strip("<>") for m in written) == sorted(
        r.message_id for r in rows
    )
