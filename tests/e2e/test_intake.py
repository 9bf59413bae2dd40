"""Faults at the intake, against the running daemon and the `ingest` command: nothing a
customer sent is bounced for an admin's mistake, recorded as a duplicate of another mail,
or lost between the raw file and the database."""

from __future__ import annotations

import hashlib
import json
import smtplib
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from postdesk.store.blobs import BlobStore
from tests.conftest import Daemon, Sink
from tests.e2e.test_daemon import tickets
from tests.helpers import free_port, mail, postdesk


@pytest.fixture
def daemon_config(write_config: Callable[..., Path], smtp_sink: tuple[Sink, int]) -> Path:
    _, sink_port = smtp_sink
    return write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
    )


def test_a_raw_file_without_a_row_becomes_a_ticket_at_restart(
    daemon_config: Path,
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    tmp_path: Path,
) -> None:
    sink, _ = smtp_sink
    daemon = start_daemon(daemon_config)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(mail(subject="Before the power cut"))
    sink.wait_for(1)
    daemon.process.terminate()
    assert daemon.process.wait(timeout=30) == 0
    # What a power cut between the raw file's fsync and the commit leaves: the file alone.
    lost = mail(subject="Written to disk, never committed")
    BlobStore(tmp_path / "data" / "raw", ".eml").put(lost.as_bytes())
    restarted = start_daemon(daemon_config)
    assert any("recovered=1" in line for line in restarted.log), "".join(restarted.log)
    acks = sink.wait_for(2)
    assert "[#2]" in acks[1]["Subject"] and acks[1]["In-Reply-To"] == lost["Message-ID"]
    subjects = {t["number"]: t["subject"] for t in tickets(daemon_config)}
    assert subjects == {1: "Before the power cut", 2: "Written to disk, never committed"}


def test_same_message_id_other_content_is_two_tickets_a_relayed_copy_is_one(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon]
) -> None:
    daemon = start_daemon(daemon_config)
    form = mail(subject="Contact form", body="Name: Ann\nMy order 1001 did not arrive.")
    other = mail(subject="Contact form", body="Name: Ann\nAnd please cancel order 1002.")
    other.replace_header("Message-ID", form["Message-ID"])
    relayed = b"Received: from mx2.example.org by mx.example.com; Mon, 23 Nov 2026\r\n"
    relayed += form.as_bytes()
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        for raw in (form.as_bytes(), other.as_bytes(), relayed):
            client.sendmail("ann@example.org", ["support@example.com"], raw)
    assert len(tickets(daemon_config)) == 2
    bodies = sorted(
        json.loads(postdesk(daemon_config, "tickets", "show", str(n), "--json").stdout)["messages"][
            0
        ]["body"]
        for n in (1, 2)
    )
    assert "order 1002" in bodies[0] and "order 1001" in bodies[1]


def test_a_constraint_violation_answers_451_exits_75_and_keeps_the_raw(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    daemon = start_daemon(daemon_config)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(mail(subject="First"))
    database = tmp_path / "data" / "postdesk.db"

    def set_counter(value: int) -> None:
        with sqlite3.connect(database) as conn:
            conn.execute("UPDATE counters SET value = ? WHERE name = 'ticket'", (value,))

    set_counter(0)  # the next ticket number is taken: a unique violation, not a duplicate
    second = mail(subject="Second").as_bytes()
    with (
        smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        client.sendmail("ann@example.org", ["support@example.com"], second)
    assert refused.value.smtp_code == 451
    third = mail(subject="Third").as_bytes()
    piped = postdesk(daemon_config, "ingest", stdin=third)
    assert piped.returncode == 75, piped.stderr.decode()
    assert b"constraint violated" in piped.stderr
    raw = BlobStore(tmp_path / "data" / "raw", ".eml")
    assert raw.get(hashlib.sha256(third).hexdigest()) == third
    kept = [raw.get(key) for key in raw.stored()]
    assert any(b"Subject: Second" in content for content in kept)  # as SMTP carried it: CRLF
    assert len(tickets(daemon_config)) == 1
    set_counter(1)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.sendmail("ann@example.org", ["support@example.com"], second)
    assert postdesk(daemon_config, "ingest", stdin=third).returncode == 0
    assert sorted(t["subject"] for t in tickets(daemon_config)) == ["First", "Second", "Third"]


def test_ingest_exits_75_for_every_failure_an_admin_can_fix(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    message = mail().as_bytes()
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: broken\n    then: {queue: nowhere}\n")
    broken_rules = write_config(rules=str(rules))
    done = postdesk(broken_rules, "ingest", stdin=message)
    assert done.returncode == 75, done.stderr.decode()
    assert f"{rules}:".encode() in done.stderr
    assert postdesk(broken_rules, "check-config").returncode == 78

    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("support_addresses: [support@example.com\n")
    assert postdesk(broken_yaml, "ingest", stdin=message).returncode == 75
    unreadable = postdesk(tmp_path / "missing.yaml", "ingest", stdin=message)
    assert unreadable.returncode == 75
    assert b"cannot read" in unreadable.stderr

    (tmp_path / "not-a-dir").write_text("a file where the data folder should be\n")
    blocked = write_config(data_dir=str(tmp_path / "not-a-dir"))
    done = postdesk(blocked, "ingest", stdin=message)
    assert done.returncode == 75, done.stderr.decode()

    rules.write_text("rules: []\n")
    fixed = write_config(rules=str(rules))
    bug = postdesk(fixed, "ingest", str(tmp_path))  # a folder where a file should be
    assert bug.returncode == 75
    assert b"unexpected error" in bug.stderr and b"IsADirectoryError" in bug.stderr
    done = postdesk(fixed, "ingest", stdin=message)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["outcome"] == "ticket_created"


def test_ingest_exits_75_on_an_old_schema(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    assert postdesk(config, "db", "upgrade").returncode == 0
    with sqlite3.connect(tmp_path / "data" / "postdesk.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    done = postdesk(config, "ingest", stdin=mail().as_bytes())
    assert done.returncode == 75
    assert b"postdesk db upgrade" in done.stderr


def test_commands_on_a_database_without_schema_say_upgrade_and_exit_78(
    write_config: Callable[..., Path], database_url: str
) -> None:
    config = write_config(database=database_url)
    for command in (["tickets", "list"], ["sweep"], ["status"], ["quarantine", "list"]):
        done = postdesk(config, *command)
        assert done.returncode == 78, (command, done.stderr.decode())
        assert b"run `postdesk db upgrade`" in done.stderr
        assert b"Traceback" not in done.stderr
    assert postdesk(config, "db", "upgrade").returncode == 0
    assert postdesk(config, "tickets", "list").returncode == 0


def test_init_for_a_service_puts_the_data_outside_the_config(tmp_path: Path) -> None:
    etc, data = tmp_path / "etc", tmp_path / "var-lib"
    done = subprocess.run(
        [sys.executable, "-m", "postdesk.daemon.cli", "init", str(etc), "--data-dir", str(data)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    config = etc / "config.yaml"
    assert f"data_dir: {data}  # database" in config.read_text()
    secrets = etc / "postdesk.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o640
    assert secrets.stat().st_gid == etc.stat().st_gid
    checked = postdesk(config, "check-config")
    assert checked.returncode == 0, checked.stderr.decode()
    assert f"sqlite:///{data}/postdesk.db".encode() in checked.stdout
    assert postdesk(config, "ingest", stdin=mail().as_bytes()).returncode == 0
    assert (data / "postdesk.db").exists() and not (etc / "data").exists()
