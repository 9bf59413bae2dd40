"""`postdesk ingest -` as the MTA's pipe runs it, with and without the running daemon: the
daemon takes the message over its local socket when it listens, the process ingests it
itself when nobody does, and the exit code and the printed line are the same either way."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postdesk.store.blobs import BlobStore
from tests.conftest import Daemon, Sink
from tests.e2e.test_daemon import tickets
from tests.helpers import mail, postdesk, read_until

SUPPORT = "support@example.com"
CREATED = b'{"file": "-", "outcome": "ticket_created", "ticket": 1, "reason": ""}\n'
"""What `ingest -` printed for a first message before the daemon could take it."""


@pytest.fixture
def daemon_config(write_config: Callable[..., Path], smtp_sink: tuple[Sink, int]) -> Path:
    _, sink_port = smtp_sink
    return write_config(outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}})


@pytest.fixture
def raw_store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "data" / "raw", ".eml")


def pipe(config: Path, raw: bytes, *recipients: str) -> tuple[int, bytes, str]:
    """Exit code, stdout and stderr of the README's pipe command for one message."""
    options = [word for r in recipients or (SUPPORT,) for word in ("--recipient", r)]
    done = postdesk(config, "ingest", *options, stdin=raw)
    return done.returncode, done.stdout, done.stderr.decode()


def envelopes(tmp_path: Path) -> list[tuple[str, list[str]]]:
    with sqlite3.connect(tmp_path / "data" / "postdesk.db") as conn:
        rows = conn.execute("SELECT source, envelope_to FROM inbound ORDER BY id").fetchall()
    return [(source, json.loads(to)) for source, to in rows]


def test_the_running_daemon_stores_the_piped_message_and_answers_as_ingest_prints(
    daemon_config: Path,
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    raw_store: BlobStore,
    tmp_path: Path,
) -> None:
    sink, _ = smtp_sink
    daemon = start_daemon(daemon_config)
    customer = mail(subject="Printer is on fire")
    code, out, err = pipe(daemon_config, customer.as_bytes())
    assert (code, out) == (0, CREATED), err
    assert "message ingested" not in err  # stored by the daemon, not by this process
    read_until(daemon.process, "source=pipe outcome=ticket_created", daemon.log, timeout=10)
    (ack,) = sink.wait_for(1)
    assert "[#1]" in ack["Subject"] and ack["In-Reply-To"] == customer["Message-ID"]
    # The bytes as the MTA piped them: bare LF line ends, a line of 5,000 bytes, no final
    # newline; LMTP itself would have changed the first and refused the second.
    odd = b"From: bob@example.org\nTo: support@example.com\nSubject: Long\n\n" + b"word " * 1000
    code, out, err = pipe(daemon_config, odd)
    assert code == 0 and json.loads(out)["outcome"] == "ticket_created", err
    again = pipe(daemon_config, odd)
    assert again[:2] == (
        0,
        b'{"file": "-", "outcome": "duplicate", "ticket": null, '
        b'"reason": "same bytes already received"}\n',
    )
    for raw in (customer.as_bytes(), odd):
        assert raw_store.get(hashlib.sha256(raw).hexdigest()) == raw
    assert envelopes(tmp_path) == [("pipe", [SUPPORT])] * 2  # the same bytes add no row
    socket_file = tmp_path / "data" / "postdesk.sock"
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o660


def test_a_temporary_failure_in_the_daemon_exits_75_and_keeps_the_raw(
    daemon_config: Path,
    start_daemon: Callable[[Path], Daemon],
    raw_store: BlobStore,
    tmp_path: Path,
) -> None:
    start_daemon(daemon_config)
    assert pipe(daemon_config, mail(subject="First").as_bytes())[0] == 0
    with sqlite3.connect(tmp_path / "data" / "postdesk.db") as conn:
        conn.execute("UPDATE counters SET value = 0 WHERE name = 'ticket'")  # number taken
    second = mail(subject="Second").as_bytes()
    code, out, err = pipe(daemon_config, second)
    assert (code, out) == (75, b""), err
    assert "451" in err and "message ingested" not in err  # the daemon's answer, no retry here
    assert raw_store.get(hashlib.sha256(second).hexdigest()) == second
    assert [t["subject"] for t in tickets(daemon_config)] == ["First"]


def test_a_full_daemon_answers_421_and_the_message_stays_with_the_mta(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    config = write_config(listen={"smtp": None, "max_connections": 1})
    start_daemon(config)
    with socket.socket(socket.AF_UNIX) as held:
        held.connect(str(tmp_path / "data" / "postdesk.sock"))
        assert held.recv(100).startswith(b"220")
        code, out, err = pipe(config, mail().as_bytes())
    assert (code, out) == (75, b""), err
    assert "421" in err
    assert tickets(config) == []


def test_without_a_daemon_the_message_is_ingested_in_process(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    code, out, err = pipe(config, mail().as_bytes())
    assert (code, out) == (0, CREATED), err
    assert "message ingested" in err
    assert len(list((tmp_path / "sent" / "new").iterdir())) == 1
    assert envelopes(tmp_path) == [("pipe", [SUPPORT])]


@pytest.fixture
def killed_daemon(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> Iterator[Path]:
    """A daemon killed with SIGKILL: its socket file stays, and nobody listens on it."""
    daemon = start_daemon(daemon_config)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(timeout=30)
    socket_file = tmp_path / "data" / "postdesk.sock"
    assert socket_file.is_socket()
    yield socket_file


def test_a_stale_socket_falls_back_to_in_process_and_a_restart_replaces_it(
    daemon_config: Path,
    killed_daemon: Path,
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
) -> None:
    sink, _ = smtp_sink
    code, out, err = pipe(daemon_config, mail(subject="While the daemon is down").as_bytes())
    assert (code, out) == (0, CREATED), err
    assert "no daemon on the socket" in err and "message ingested" in err
    daemon = start_daemon(daemon_config)
    code, out, err = pipe(daemon_config, mail(subject="After the restart").as_bytes())
    assert code == 0 and json.loads(out)["ticket"] == 2, err
    assert "message ingested" not in err
    read_until(daemon.process, "source=pipe outcome=ticket_created", daemon.log, timeout=10)
    assert len(sink.wait_for(2)) == 2


def test_a_recipient_the_daemon_refuses_is_ingested_in_process_as_the_pipe_says(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    """The pipe's --recipient was always taken as given; the daemon's RCPT check does not
    turn a delivery the MTA routed here into a bounce or a deferral."""
    start_daemon(daemon_config)
    code, out, err = pipe(daemon_config, mail().as_bytes(), "helpdesk@example.org")
    assert (code, out) == (0, CREATED), err
    assert "550" in err and "message ingested" in err
    assert envelopes(tmp_path) == [("pipe", ["helpdesk@example.org"])]


@pytest.mark.slow
def test_kill_minus_nine_among_piped_mail_loses_nothing_and_creates_nothing_twice(
    daemon_config: Path,
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
) -> None:
    """Postfix runs `ingest -` per message and defers it on 75 until it exits 0; the daemon
    is killed while the mail streams in and started again at once, and meanwhile the pipe
    ingests in process."""
    sink, _ = smtp_sink
    messages, kills = 40, 2
    seed = int(os.environ.get("POSTDESK_FAULT_SEED") or random.randrange(2**32))
    kill_after = sorted(random.Random(seed).sample(range(5, messages - 5), kills))
    why = f"POSTDESK_FAULT_SEED={seed}, killed after {kill_after} acknowledgements"
    codes: list[int] = []
    customers = [
        mail(sender=f"customer{i}@example.org", subject=f"Question {i}") for i in range(messages)
    ]
    message_ids = [str(m["Message-ID"]) for m in customers]

    def mta() -> None:
        for customer in customers:
            raw = customer.as_bytes()
            while True:
                codes.append(pipe(daemon_config, raw)[0])
                if codes[-1] != 75:
                    break

    daemon = start_daemon(daemon_config)
    daemon.drain()
    piping = threading.Thread(target=mta)
    piping.start()
    for count in kill_after:
        sink.wait_for(count, timeout=60)
        daemon.process.kill()
        daemon.process.wait(timeout=30)
        daemon = start_daemon(daemon_config)
        daemon.drain()
    piping.join(timeout=300)
    assert not piping.is_alive(), why
    assert set(codes) <= {0, 75} and codes.count(0) == messages, why
    daemon.process.terminate()
    assert daemon.process.wait(timeout=30) == 0
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    assert postdesk(daemon_config, "send-outbox", "--now", later).returncode == 0

    subjects = sorted(t["subject"] for t in tickets(daemon_config))
    assert subjects == sorted(f"Question {i}" for i in range(messages)), why
    status = json.loads(postdesk(daemon_config, "status", "--json").stdout)
    assert status["outbox"]["queued"] == 0, why
    acknowledged = {str(parsed["In-Reply-To"]) for parsed in sink.wait_for(messages)}
    assert acknowledged == set(message_ids), why


def test_a_reload_moves_the_socket_and_null_closes_it(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    config = write_config()
    daemon = start_daemon(config)
    old, new = tmp_path / "data" / "postdesk.sock", tmp_path / "moved.sock"
    write_config(listen={"smtp": None, "socket": str(new)})
    daemon.process.send_signal(signal.SIGHUP)
    read_until(daemon.process, f"msg=listening protocol=socket address={new}", daemon.log, 20)
    assert new.is_socket() and not old.exists()
    code, out, err = pipe(config, mail().as_bytes())
    assert (code, out) == (0, CREATED) and "message ingested" not in err, err
    write_config(listen={"smtp": None, "socket": None})
    daemon.process.send_signal(signal.SIGHUP)
    read_until(daemon.process, f'closed" protocol=socket address={new}', daemon.log, 20)
    assert not new.exists()
    code, out, err = pipe(config, mail(subject="Second").as_bytes())
    assert code == 0 and "message ingested" in err, err


def test_a_data_folder_too_deep_for_the_default_socket_keeps_the_daemon_up(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    """An installation upgraded with a long data folder path still starts; its pipe ingests
    in process until listen.socket names a shorter path."""
    deep = tmp_path / ("d" * 120) / "data"
    config = write_config(data_dir=str(deep))
    daemon = start_daemon(config)
    assert any("no pipe socket" in line for line in daemon.log), daemon.log
    assert daemon.process.poll() is None
    code, out, err = pipe(config, mail().as_bytes())
    assert (code, out) == (0, CREATED), err
    assert "message ingested" in err
    chosen = write_config(data_dir=str(deep), listen={"smtp": None, "socket": "pipe.sock"})
    assert postdesk(chosen, "check-config").returncode != 0
