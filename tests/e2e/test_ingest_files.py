"""`postdesk ingest FILE...`: files committed in chunks, a line per file once its chunk is on
disk, progress on a terminal, and a `kill -9` mid-run that loses nothing it answered."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_daemon import postdesk
from tests.helpers import mail


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
    assert re.search(r"\r\x1b\[K4/4 messages, \d+/s, 0 s left", text), text
    summary = text.rsplit("\r\x1b[K", 1)[-1]
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
