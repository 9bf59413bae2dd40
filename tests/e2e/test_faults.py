"""Faults injected into a running daemon: `kill -9` while mail streams in. Afterwards every
message is exactly one ticket with exactly one acknowledgement row; delivery is at least once,
so a kill between the relay's 250 and our commit may repeat one mail (same Message-ID).

The kill points are random; the seed is in every failure message, and
``POSTDESK_FAULT_SEED=<seed>`` replays a run."""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import signal
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from tests.conftest import AuthSink, Daemon, Sink
from tests.helpers import free_port, mail, postdesk, read_until
from tests.tcp_proxy import Proxy

MESSAGES = 1000
KILLS = 5


@pytest.mark.slow
def test_kill_minus_nine_loses_nothing_and_creates_nothing_twice(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    tmp_path: Path,
) -> None:
    sink, sink_port = smtp_sink
    port = free_port()
    config = write_config(
        listen={"smtp": f"127.0.0.1:{port}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
    )
    seed = int(os.environ.get("POSTDESK_FAULT_SEED") or random.randrange(2**32))
    kill_after = sorted(random.Random(seed).sample(range(20, MESSAGES - 20), KILLS))
    why = f"POSTDESK_FAULT_SEED={seed}, killed after {kill_after} acknowledgements"
    up = threading.Event()

    def customers() -> None:
        """Like an MTA: every message is retried until the daemon answers 250."""
        client: smtplib.SMTP | None = None
        for i in range(MESSAGES):
            message = mail(sender=f"customer{i}@example.org", subject=f"Question {i}")
            while True:
                up.wait()
                try:
                    client = client or smtplib.SMTP("127.0.0.1", port, timeout=30)
                    client.send_message(message)
                    break
                except (OSError, smtplib.SMTPException):
                    client = None  # killed mid-transaction: wait until it is back, send again
        if client is not None:
            client.quit()

    daemon = start_daemon(config)
    daemon.drain()
    up.set()
    sender = threading.Thread(target=customers)
    sender.start()
    for count in kill_after:
        sink.wait_for(count, timeout=60)
        up.clear()
        daemon.process.kill()
        daemon.process.wait(timeout=30)
        daemon = start_daemon(config)
        daemon.drain()
        up.set()
    sender.join(timeout=300)
    assert not sender.is_alive(), why
    daemon.process.terminate()
    assert daemon.process.wait(timeout=30) == 0
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    flushed = postdesk(config, "send-outbox", "--now", later)
    assert flushed.returncode == 0, flushed.stderr.decode()

    database = sqlite3.connect(tmp_path / "data" / "postdesk.db")
    assert database.execute("SELECT count(*) FROM tickets").fetchone() == (MESSAGES,), why
    acks = database.execute(
        "SELECT count(*), count(DISTINCT ticket_id), min(status), max(status) FROM outbox "
        "WHERE kind = 'autoreply'"
    ).fetchone()
    assert acks == (MESSAGES, MESSAGES, "sent", "sent"), why
    delivered = [parsed["In-Reply-To"] for parsed in sink.wait_for(MESSAGES)]
    assert len(set(delivered)) == MESSAGES, why
    assert len(delivered) - MESSAGES <= KILLS, why
    status = json.loads(postdesk(config, "status", "--json").stdout)
    assert status["outbox"]["queued"] == 0


class HangingRelay(Sink):
    """Takes the first mail's DATA and never answers it, as a relay that hangs mid-delivery;
    every later mail is accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.hanging.is_set():
            self.hanging.set()
            await asyncio.sleep(3600)  # cancelled when the relay stops
        return await super().handle_DATA(server, session, envelope)


def test_restart_under_the_same_instance_name_resumes_its_outbox_claims_at_once(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    """Killed while the relay holds a delivery: the claim (2 minutes) is the instance's own,
    so the restarted instance sends the mail at once, not when the claim runs out."""
    relay = HangingRelay()
    relay_port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=relay_port)
    controller.start()
    try:
        config = write_config(
            instance="mail1",
            listen={"smtp": f"127.0.0.1:{free_port()}"},
            outgoing={"smtp": {"host": "127.0.0.1", "port": relay_port}},
        )
        daemon = start_daemon(config)
        daemon.drain()
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
            client.send_message(mail())
        assert relay.hanging.wait(30)
        database = sqlite3.connect(tmp_path / "data" / "postdesk.db")
        claim = database.execute("SELECT status, claimed_by, next_attempt_at FROM outbox")
        status, holder, due = claim.fetchone()
        assert (status, holder) == ("queued", "mail1")
        assert datetime.fromisoformat(due).replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(
            seconds=60
        )
        daemon.process.kill()
        daemon.process.wait(timeout=30)
        restarted = time.monotonic()
        daemon = start_daemon(config)
        assert any('outbox claims of this instance resumed" rows=1' in line for line in daemon.log)
        read_until(daemon.process, "mail delivered", daemon.log, 20)
        assert time.monotonic() - restarted < 20
        (ack,) = relay.wait_for(1)
        assert "[#1]" in ack["Subject"]
        assert database.execute("SELECT status, claimed_by FROM outbox").fetchall() == [
            ("sent", None)
        ]
    finally:
        controller.stop()


def test_relay_refusing_the_login_pauses_the_daemon_and_loses_nothing(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    auth_sink: tuple[AuthSink, int],
    tmp_path: Path,
) -> None:
    """A wrong relay password: the daemon pauses, fails nothing and says so in status;
    fixed, `outbox retry --failed` ends the pause and a reload sends everything."""
    sink, sink_port = auth_sink
    secret = tmp_path / "relay.pass"
    secret.write_text("wrong\n")
    config = write_config(
        admin_address="admin@example.com",
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={
            "smtp": {
                "host": "127.0.0.1",
                "port": sink_port,
                "username": "postdesk",
                "password_file": str(secret),
            }
        },
    )
    daemon = start_daemon(config)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        for i in range(3):
            client.send_message(mail(sender=f"c{i}@example.org", subject=f"Question {i}"))
    read_until(daemon.process, "relay fault: all delivery paused", daemon.log, timeout=30)
    status = json.loads(postdesk(config, "status", "--json").stdout)
    assert status["outbox"]["failed"] == 0 and status["outbox"]["sent"] == 0
    assert status["relay"]["paused"]
    assert status["relay"]["last_relay_error"].startswith("authentication refused: 535")
    secret.write_text("right\n")
    retried = json.loads(postdesk(config, "outbox", "retry", "--failed").stdout)
    assert retried == {"requeued": [], "pause_lifted": True}
    daemon.process.send_signal(signal.SIGHUP)
    delivered = sink.wait_for(4, timeout=30)  # three acknowledgements and the admin's alert
    assert sorted(str(m["To"]) for m in delivered)[0] == "admin@example.com"
    read_until(daemon.process, "delivery resumed", daemon.log, timeout=30)
    status = json.loads(postdesk(config, "status", "--json").stdout)
    assert (status["outbox"]["queued"], status["outbox"]["failed"]) == (0, 0)
    assert status["outbox"]["sent"] == 4
    assert not status["relay"]["paused"] and status["relay"]["relay_failures"] == 0
    assert len(sink.messages) == 4


def _disk_limit(limit: int) -> Callable[[], None]:
    """Files the process writes may not grow past ``limit`` bytes: a full disk, as the kernel
    reports it (EFBIG), without needing a real one."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def test_full_disk_makes_ingest_exit_75_and_nothing_is_lost(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    assert postdesk(config, "db", "upgrade").returncode == 0
    big = mail(body="A long log follows.\n" + "log line 0123456789\n" * 20_000).as_bytes()
    full = subprocess.run(
        [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "ingest"],
        input=big,
        capture_output=True,
        timeout=60,
        preexec_fn=_disk_limit(64 * 1024),
    )
    assert full.returncode == 75, full.stderr.decode()
    assert b"cannot store blob" in full.stderr and b"File too large" in full.stderr
    retried = postdesk(config, "ingest", stdin=big)
    assert retried.returncode == 0, retried.stderr.decode()
    (ticket,) = json.loads(postdesk(config, "tickets", "list", "--json").stdout)
    assert ticket["number"] == 1


def test_full_disk_makes_the_listener_answer_451(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(listen={"smtp": f"127.0.0.1:{port}"})
    assert postdesk(config, "db", "upgrade").returncode == 0
    daemon = subprocess.Popen(
        [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "run"],
        stderr=subprocess.PIPE,
        bufsize=0,
        cwd=tmp_path,
        preexec_fn=_disk_limit(64 * 1024),
    )
    log: list[str] = []
    try:
        read_until(daemon, "postdesk ready", log, timeout=30)
        big = mail(body="A long log follows.\n" + "log line 0123456789\n" * 20_000)
        with smtplib.SMTP("127.0.0.1", port) as client:
            try:
                client.send_message(big)
                raise AssertionError("a full disk must not be answered with 250")
            except smtplib.SMTPDataError as exc:
                assert exc.smtp_code == 451
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert json.loads(postdesk(config, "tickets", "list", "--json").stdout) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_database_down_answers_451_and_exits_75_then_takes_the_retries(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    database_url: str,
) -> None:
    """The daemon reaches PostgreSQL through a proxy the test cuts: a server that went away."""
    sink, sink_port = smtp_sink
    url = make_url(database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    smtp_port, lmtp_port = free_port(), free_port()
    config = write_config(
        database=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
        listen={"smtp": f"127.0.0.1:{smtp_port}", "lmtp": f"127.0.0.1:{lmtp_port}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
    )
    assert postdesk(config, "db", "upgrade").returncode == 0
    daemon = start_daemon(config)
    daemon.drain()
    first, second, third = (mail(subject=f"Question {i}") for i in range(3))
    with smtplib.SMTP("127.0.0.1", smtp_port) as client:
        client.send_message(first)
    sink.wait_for(1)

    proxy.cut()
    for client, message in (
        (smtplib.SMTP("127.0.0.1", smtp_port), second),
        (smtplib.LMTP("127.0.0.1", lmtp_port), third),
    ):
        with client, pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(message)
        assert refused.value.smtp_code == 451
    piped = postdesk(config, "ingest", stdin=third.as_bytes())
    assert piped.returncode == 75, piped.stderr.decode()
    assert b"database unavailable" in piped.stderr

    proxy.start()
    with smtplib.SMTP("127.0.0.1", smtp_port) as client:
        client.send_message(second)  # the sending MTA's retry
    with smtplib.LMTP("127.0.0.1", lmtp_port) as client:
        client.send_message(third)
    acknowledged = sink.wait_for(3)
    assert daemon.process.poll() is None
    subjects = sorted(
        t["subject"] for t in json.loads(postdesk(config, "tickets", "list", "--json").stdout)
    )
    assert subjects == ["Question 0", "Question 1", "Question 2"]
    assert len({str(m["In-Reply-To"]) for m in acknowledged}) == 3
