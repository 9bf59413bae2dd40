"""A real Postfix in front of postdesk, configured with the README's snippets: over LMTP to
the running daemon, and through the pipe transport to `postdesk ingest --recipient`. A broken
rules file makes Postfix defer the mail (exit 75), never bounce it, and the mail is
delivered once the file is fixed."""

from __future__ import annotations

import json
import pwd
import shutil
import smtplib
import sqlite3
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from postdesk.config.loader import EXAMPLE_DIR
from tests.conftest import Daemon, Sink
from tests.e2e.test_daemon import tickets
from tests.helpers import free_port, mail, read_until
from tests.postfix_server import Postfix, available

PIPE_USER = "nobody"
"""Postfix runs a pipe as a user that is not root; the README's `postdesk` stands for it."""

pytestmark = pytest.mark.skipif(
    not available(), reason="Postfix tests need Debian's postfix (see .ci/run)"
)


@pytest.fixture(scope="session")
def installed_postdesk() -> Iterator[Path]:
    """A `postdesk` command the pipe user can run: a venv of the system Python (the test's
    own interpreter may live where that user cannot read) that sees this checkout and its
    dependencies through the test venv's site-packages."""
    root = Path(tempfile.mkdtemp(prefix="postdesk-venv-", dir="/tmp"))
    root.chmod(0o755)
    venv = root / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    ours = sysconfig.get_paths()["purelib"]
    (site / "postdesk-checkout.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    command = venv / "bin" / "postdesk"
    command.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom postdesk.daemon.cli import main\nsys.exit(main())\n"
    )
    command.chmod(0o755)
    yield command
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def start_postfix() -> Iterator[Callable[..., Postfix]]:
    started: list[Postfix] = []

    def start(main_cf: str, master_cf: str = "") -> Postfix:
        server = Postfix(main_cf, master_cf)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def envelope_recipients(database: Path) -> list[Any]:
    """Read-only, so that root creates no file in a database another user writes."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT envelope_to FROM inbound ORDER BY id").fetchall()
    return [json.loads(value) for (value,) in rows]


def send(postfix: Postfix, message: Any) -> None:
    with smtplib.SMTP("127.0.0.1", postfix.port) as client:
        client.send_message(message)


def test_postfix_delivers_over_lmtp_to_the_daemon(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    start_postfix: Callable[..., Postfix],
    tmp_path: Path,
) -> None:
    sink, sink_port = smtp_sink
    lmtp = free_port()
    config = write_config(
        listen={"smtp": None, "lmtp": f"127.0.0.1:{lmtp}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
    )
    start_daemon(config)
    # The README's main.cf lines, with this test's port.
    postfix = start_postfix(
        f"transport_maps = inline:{{support@example.com=lmtp:inet:127.0.0.1:{lmtp}}}"
    )
    customer = mail(subject="Printer is on fire")
    send(postfix, customer)
    (sent,) = postfix.wait_for_log(r"status=sent")
    assert f"relay=127.0.0.1[127.0.0.1]:{lmtp}" in sent and "ticket_created" in sent
    (ack,) = sink.wait_for(1)
    assert "[#1]" in ack["Subject"] and ack["In-Reply-To"] == customer["Message-ID"]
    (ticket,) = tickets(config)
    assert ticket["subject"] == "Printer is on fire"
    assert envelope_recipients(tmp_path / "data" / "postdesk.db") == [["support@example.com"]]


@pytest.fixture
def pipe_home() -> Iterator[Path]:
    """A folder the pipe user can read, with that user's data folder in it."""
    home = Path(tempfile.mkdtemp(prefix="postdesk-etc-", dir="/tmp"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def pipe_config(home: Path, sink_port: int) -> Path:
    shutil.copyfile(EXAMPLE_DIR / "rules.yaml", home / "rules.yaml")
    config = home / "config.yaml"
    settings = {
        "data_dir": str(home / "data"),
        "support_addresses": ["support@example.com"],
        "listen": {"smtp": None},
        "outgoing": {"smtp": {"host": "127.0.0.1", "port": sink_port}},
        "queues": [{"name": "general"}, {"name": "ops"}, {"name": "billing"}],
        "rules": "rules.yaml",
    }
    config.write_text(yaml.safe_dump(settings))
    home.chmod(0o755)
    (home / "data").mkdir()
    shutil.chown(home / "data", PIPE_USER)
    return config


def pipe_postfix(command: Path, config: Path, start_postfix: Callable[..., Postfix]) -> Postfix:
    """Postfix with the README's master.cf and main.cf lines for the pipe."""
    master_cf = (
        "postdesk  unix  -       n       n       -       -       pipe\n"
        f"  flags=Rq user={PIPE_USER} argv={command} --config {config} ingest"
        " --recipient ${recipient}\n"
    )
    main_cf = (
        "transport_maps = inline:{support@example.com=postdesk:}\n"
        "postdesk_destination_recipient_limit = 1\n"
    )
    return start_postfix(main_cf, master_cf)


def test_postfix_pipe_defers_on_broken_rules_and_delivers_once_fixed(
    installed_postdesk: Path,
    smtp_sink: tuple[Sink, int],
    start_postfix: Callable[..., Postfix],
    pipe_home: Path,
) -> None:
    sink, sink_port = smtp_sink
    command, home = installed_postdesk, pipe_home
    rules = home / "rules.yaml"
    config = pipe_config(home, sink_port)
    postfix = pipe_postfix(command, config, start_postfix)

    send(postfix, mail(subject="First, with good rules"))
    postfix.wait_for_log(r"relay=postdesk, .*status=sent")
    sink.wait_for(1)

    rules.write_text("rules:\n  - name: typo\n    then: {queue: nowhere}\n")
    second = mail(subject="Second, while the rules are broken")
    send(postfix, second)
    (deferred,) = postfix.wait_for_log(r"relay=postdesk, .*status=deferred")
    assert "bounced" not in postfix.maillog()
    assert "temporary failure" in deferred and f"{rules}:" in deferred
    assert "1 Request" in postfix.queue()

    shutil.copyfile(EXAMPLE_DIR / "rules.yaml", rules)
    postfix.flush()
    postfix.wait_for_log(r"relay=postdesk, .*status=sent", count=2)
    acks = sink.wait_for(2)
    assert "[#2]" in acks[1]["Subject"] and acks[1]["In-Reply-To"] == second["Message-ID"]
    listed = subprocess.run(
        [
            *("runuser", "-u", PIPE_USER, "--", str(command), "--config", str(config)),
            "tickets",
            "list",
            "--json",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    subjects = sorted(t["subject"] for t in json.loads(listed.stdout))
    assert subjects == ["First, with good rules", "Second, while the rules are broken"]
    recipients = envelope_recipients(home / "data" / "postdesk.db")
    assert recipients == [["support@example.com"], ["support@example.com"]]


def test_postfix_pipe_hands_the_mail_to_the_running_daemon(
    installed_postdesk: Path,
    smtp_sink: tuple[Sink, int],
    start_postfix: Callable[..., Postfix],
    pipe_home: Path,
) -> None:
    """The daemon runs as the pipe's user, as the README's unit and master.cf have it, so the
    pipe may use its socket; the daemon's log shows that it stored the mail."""
    sink, sink_port = smtp_sink
    config = pipe_config(pipe_home, sink_port)
    account = pwd.getpwnam(PIPE_USER)
    daemon = subprocess.Popen(
        [str(installed_postdesk), "--config", str(config), "run"],
        stderr=subprocess.PIPE,
        bufsize=0,
        cwd=pipe_home,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
    )
    log: list[str] = []
    try:
        read_until(daemon, "postdesk ready", log, timeout=30)
        postfix = pipe_postfix(installed_postdesk, config, start_postfix)
        customer = mail(subject="Through the pipe to the daemon")
        send(postfix, customer)
        read_until(daemon, "source=pipe outcome=ticket_created", log, timeout=60)
        postfix.wait_for_log(r"relay=postdesk, .*status=sent")
        (ack,) = sink.wait_for(1)
        assert "[#1]" in ack["Subject"] and ack["In-Reply-To"] == customer["Message-ID"]
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert envelope_recipients(pipe_home / "data" / "postdesk.db") == [["support@example.com"]]
