"""The thin `ingest -` reads the command line and config.yaml without the full parsers: it
must find the socket the daemon listens on, and leave everything else to the full path."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from postdesk.config.loader import load
from postdesk.config.schema import Settings
from postdesk.daemon import handoff
from postdesk.daemon.checks import cross_references
from postdesk.daemon.cli.thin_ingest import Pipe, pipe_arguments, socket_path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--config", "/etc/c.yaml", "ingest", "--recipient", "support@example.com"],
            Pipe("/etc/c.yaml", "INFO", ("support@example.com",)),
        ),
        (
            ["ingest", "--recipient=a@example.com", "-", "--config=c.yaml", "--log-level", "debug"],
            Pipe("c.yaml", "DEBUG", ("a@example.com",)),
        ),
        (
            ["ingest", "--recipient", "a@example.com", "--recipient", "b+x@example.com"],
            Pipe(None, "INFO", ("a@example.com", "b+x@example.com")),
        ),
        (["ingest"], None),  # no recipient: the envelope stays unknown, as before
        (["ingest", "--recipient", "a@example.com", "mail.eml"], None),  # files
        (["ingest", "--recipient", "a@example.com", "-", "-"], None),
        (["ingest", "--recip", "a@example.com"], None),  # argparse's abbreviation
        (["ingest", "--recipient", "Ann <a@example.com>"], None),
        (["ingest", "--recipient", "a@example.com>\r\nRSET"], None),
        (["ingest", "--recipient", "ann@пример.рф"], None),
        (["ingest", "--recipient"], None),
        (["--log-level", "LOUD", "ingest", "--recipient", "a@example.com"], None),
        (["tickets", "list"], None),
        (["--help"], None),
    ],
)
def test_only_a_pipe_delivery_takes_the_thin_path(argv: list[str], expected: Pipe | None) -> None:
    assert pipe_arguments(argv) == expected


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"data_dir": "state"},
        {"data_dir": "/var/lib/postdesk", "listen": {"smtp": None}},
        {"listen": {"socket": "/run/postdesk/pipe.sock"}},
        {"data_dir": "state", "listen": {"socket": "sockets/pipe.sock", "lmtp": "127.0.0.1:2424"}},
        {"listen": {"socket": None}},
    ],
)
def test_the_socket_is_where_the_daemon_listens(tmp_path: Path, settings: dict[str, Any]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert socket_path(str(config)) == load(config).pipe_socket


def test_the_socket_of_the_embedded_default_and_of_postdesk_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTDESK_CONFIG", raising=False)
    assert socket_path(None) == load(None).pipe_socket
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data_dir": "elsewhere"}))
    monkeypatch.setenv("POSTDESK_CONFIG", str(config))
    assert socket_path(None) == load(None).pipe_socket == tmp_path / "elsewhere" / "postdesk.sock"


@pytest.mark.parametrize(
    "text", ["listen: [1, 2]\n", "data_dir: [x]\n", "listen: {socket: 5}\n", "a: [\n", "- 1\n"]
)
def test_a_config_it_cannot_read_is_left_to_the_full_loader(tmp_path: Path, text: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert socket_path(str(config)) is None
    assert socket_path(str(tmp_path / "missing.yaml")) is None


@pytest.mark.parametrize(
    "reason", ["", "same bytes already received", "  spaced  out  ", "ошибка: " + "x " * 500]
)
def test_the_outcome_survives_smtplib_reading_the_reply(reason: str) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        client = smtplib.LMTP()
        client.sock = ours
        theirs.sendall(handoff.accepted_reply("quarantined", 12, reason).encode() + b"\r\n")
        code, text = client.getreply()
    assert code == 250
    assert handoff.read_accepted(text.decode("ascii")) == {
        "outcome": "quarantined",
        "ticket": 12,
        "reason": reason,
    }


def test_piped_bytes_cross_unchanged() -> None:
    raw = b"Subject: x\n\n.\n..\r\n" + bytes(range(256)) + b"no newline at the end"
    assert handoff.decode_message(handoff.encode_message(raw)) == raw
    with pytest.raises(ValueError, match="not a base64 message"):
        handoff.decode_message(b"Subject: sent by some other client\r\n")


def test_the_thin_path_loads_nothing_heavy() -> None:
    """What the pipe's process imports before it hands the message over."""
    probe = (
        "import sys\n"
        "from postdesk.daemon.cli import thin_ingest\n"
        "heavy = {'pydantic', 'sqlalchemy', 'mailparser', 'jinja2', 'alembic', 'aiosmtpd'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert done.stdout == b"[]\n"


def test_check_config_finds_a_socket_path_too_long_to_bind() -> None:
    """Only one the admin chose: the default one is left out at start with a warning."""
    deep = Path("/var/lib/" + "postdesk-installation/" * 5)
    assert cross_references(Settings(data_dir=deep), None) == []
    chosen = Settings(data_dir=deep, listen={"socket": "pipe.sock"})
    (problem,) = cross_references(chosen, None)
    assert problem.startswith("(embedded default):0: listen.socket: ")
    assert "longer than a Unix socket path may be" in problem
    short = Settings(data_dir=deep, listen={"socket": "/run/postdesk/pipe.sock"})
    assert cross_references(short, None) == []
