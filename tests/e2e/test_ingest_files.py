"""Group commit from outside: `postdesk ingest FILE...` in chunks (a line per file once its
chunk is on disk, progress on a terminal) and the listener's concurrent sessions; a
`kill -9` of either in the middle loses nothing it answered."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import smtplib
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import Daemon
from tests.helpers import free_port, mail, postdesk


def write_mail(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"{i:04d}.eml"
        path.write_bytes(
            mail(sender=f"customer{i}@example.org", subject=f"Question {i}").as_bytes()
        )
        paths.append(path)
    return paths


def command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), *args]


def test_without_a_terminal_each_file_has_its_line_in_order(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    paths = write_mail(tmp_path / "mail", 130)  # more than one chunk
    done = postdesk(config, "ingest", *map(str, paths))
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in paths]
    assert [line["ticket"] for line in lines] == list(range(1, 131))
    assert {line["outcome"] for line in lines} == {"ticket_created"}
    assert b"\r" not in done.stderr


def test_on_a_terminal_progress_is_one_line_and_a_summary_ends_it(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    paths = write_mail(tmp_path / "mail", 3)
    paths.append(paths[0])
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        command(config, "ingest", *map(str, paths)), stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal's other side closed: the process is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = shown.decode()
    assert '"file"' not in text  # the terminal gets the count, not a line per file
    assert "message ingested" not in text
    assert re.search(r"\x1b\[K4/4 messages, \d+/s, 0 s left\r", text), text
    summary = text.rsplit("\x1b[K", 1)[-1]
    assert re.fullmatch(
        r"4 messages in \d+ s \(\d+/s\): 1 duplicate, 3 ticket_created\r?\n", summary
    ), summary


def test_kill_minus_nine_mid_run_loses_nothing_answered_and_answers_nothing_unstored(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    assert postdesk(config, "db", "upgrade").returncode == 0
    paths = write_mail(tmp_path / "mail", 300)
    process = subprocess.Popen(
        command(config, "ingest", *map(str, paths)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    answered = [json.loads(process.stdout.readline())]  # the first chunk is committed
    process.kill()
    process.wait(timeout=30)
    answered += [json.loads(line) for line in process.stdout.read().splitlines()]
    assert len(answered) < len(paths), "the run ended before the kill"
    database = sqlite3.connect(tmp_path / "data" / "postdesk.db")
    stored = {row[0] for row in database.execute("SELECT sha256 FROM inbound")}
    for line in answered:
        assert hashlib.sha256(Path(line["file"]).read_bytes()).hexdigest() in stored, line

    assert postdesk(config, "recover").returncode == 0  # what reached the disk, not the database
    retried = postdesk(config, "ingest", *map(str, paths))  # the sender tries everything again
    assert retried.returncode == 0, retried.stderr.decode()
    again = {line["file"]: line["outcome"] for line in map(json.loads, retried.stdout.splitlines())}
    assert all(again[line["file"]] == "duplicate" for line in answered)
    assert database.execute("SELECT count(*) FROM tickets").fetchone() == (len(paths),)
    acks = "SELECT count(*), count(DISTINCT ticket_id) FROM outbox WHERE kind = 'autoreply'"
    assert database.execute(acks).fetchone() == (len(paths), len(paths))


def test_kill_minus_nine_of_the_daemon_with_concurrent_sessions_loses_nothing_answered(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    """Eight clients at once, so the listener commits their messages in groups; killed while
    groups are in flight, every message that got its 250 is stored, and the senders' retries
    after the restart make each message one ticket."""
    port = free_port()
    config = write_config(listen={"smtp": f"127.0.0.1:{port}"})
    clients = 8
    queued = [
        [mail(sender=f"c{k}-{i}@example.org", subject=f"Question {k}-{i}") for i in range(40)]
        for k in range(clients)
    ]
    answered: list[str] = []
    enough = threading.Event()

    def send(messages: list[EmailMessage]) -> None:
        with suppress(OSError, smtplib.SMTPException), smtplib.SMTP("127.0.0.1", port) as client:
            for message in messages:
                client.send_message(message)
                answered.append(str(message["Message-ID"]).strip("<>"))
                if len(answered) >= 60:
                    enough.set()

    daemon = start_daemon(config)
    daemon.drain()
    threads = [threading.Thread(target=send, args=(share,)) for share in queued]
    for thread in threads:
        thread.start()
    assert enough.wait(60)
    daemon.process.kill()
    daemon.process.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=60)
    done = set(answered)
    assert len(done) < clients * 40, "every message was sent before the kill"
    database = sqlite3.connect(tmp_path / "data" / "postdesk.db")
    stored = {row[0] for row in database.execute("SELECT message_id FROM inbound")}
    assert done <= stored
    segments = list((tmp_path / "data" / "raw" / "segments").glob("*.seg"))
    assert segments, "no two sessions' messages were committed together"

    start_daemon(config).drain()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for message in (m for share in queued for m in share):
            if str(message["Message-ID"]).strip("<>") not in done:  # what each sender holds
                client.send_message(message)
    assert database.execute("SELECT count(*) FROM tickets").fetchone() == (clients * 40,)
