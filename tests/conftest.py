"""Fixtures: configs in temp folders, SQLite always, PostgreSQL when the URL is given,
an aiosmtpd sink standing for the outside world, and the real daemon as a subprocess."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from postdesk.config.loader import EXAMPLE_DIR
from tests.helpers import free_port, parse_mail, read_until

PG_ENV = "POSTDESK_TEST_DATABASE_URL"
DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test gets an empty database: a new SQLite file, or its own PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'postdesk.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    import sqlalchemy

    schema = f"t_{secrets.token_hex(6)}"
    admin = sqlalchemy.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config.yaml in tmp_path from the defaults below plus overrides."""

    def write(**overrides: Any) -> Path:
        config: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "support_addresses": ["support@example.com"],
            "listen": {"smtp": None},
            "outgoing": {"maildir": str(tmp_path / "sent")},
            "agents": [{"email": "anna@example.com", "name": "Anna", "queues": ["general"]}],
            "queues": [{"name": "general"}, {"name": "ops"}, {"name": "billing"}],
            # a config without a `rules` key has no rules: the tests route by the example's
            "rules": str(EXAMPLE_DIR / "rules.yaml"),
            # agent notifications have their own tests; elsewhere they would only add rows
            "notify": {"new_ticket": False, "customer_reply": False},
        }
        config.update(overrides)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        return path

    return write


@pytest.fixture
def open_app(write_config: Callable[..., Path], database_url: str) -> Iterator[Callable[..., Any]]:
    """Open an App on this test's database with config overrides; all closed at teardown."""
    from postdesk.daemon.app import App
    from postdesk.store.schema import ensure_current

    opened: list[App] = []

    def open_(**overrides: Any) -> App:
        application = App.open(str(write_config(database=database_url, **overrides)))
        ensure_current(application.db)
        opened.append(application)
        return application

    yield open_
    for application in opened:
        application.db.dispose()


@pytest.fixture
def app(open_app: Callable[..., Any]) -> Any:
    return open_app()


@dataclass
class Sink:
    """Collects what postdesk sends, as the customer's or agent's mail server would."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse_with: str | None = None
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        with self.arrived:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until count mails arrived (woken by each arrival, not by polling)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            assert len(self.messages) >= count, f"{len(self.messages)} of {count} mails arrived"
            return [parse_mail(content) for _, _, content in self.messages]


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@dataclass
class AuthSink(Sink):
    """A relay that wants AUTH: only ``password`` for ``user`` gets in (535 otherwise)."""

    user: str = "postdesk"
    password: str = "right"
    refused_logins: int = 0

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        good = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (self.user, self.password)
        if not good:
            self.refused_logins += 1
        return AuthResult(success=good, handled=False)


@pytest.fixture
def auth_sink() -> Iterator[tuple[AuthSink, int]]:
    """A relay with AUTH (no TLS, as on loopback): the smart host of a real installation."""
    sink = AuthSink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=sink.authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def dovecot() -> Iterator[Any]:
    """A real Dovecot on a free port with one user (tests/imap_server.py)."""
    from tests.imap_server import Dovecot, available

    if not available():
        pytest.skip("IMAP tests need Dovecot: apt-get install -y dovecot-imapd")
    server = Dovecot()
    server.start()
    yield server
    server.remove()


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    smtp_port: int
    lmtp_port: int
    log: list[str]

    def drain(self) -> None:
        """Keep reading the log in the background: a test that waits for no more lines must
        still empty the pipe, or the daemon blocks on its next log line once it is full."""
        assert self.process.stderr is not None
        threading.Thread(target=self.process.stderr.read, daemon=True).start()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[[Path], Daemon]]:
    """Start `postdesk run` for a config; stopped with SIGTERM at teardown."""
    started: list[Daemon] = []

    def start(config: Path) -> Daemon:
        process = subprocess.Popen(
            [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "run"],
            stderr=subprocess.PIPE,
            bufsize=0,  # unbuffered: read_until's select() must see every line
            cwd=tmp_path,
        )
        data = yaml.safe_load(config.read_text())
        ports = [
            int(str(data["listen"].get(k) or ":0").rsplit(":", 1)[1]) for k in ("smtp", "lmtp")
        ]
        daemon = Daemon(process, ports[0], ports[1], [])
        started.append(daemon)
        read_until(process, "postdesk ready", daemon.log, timeout=30)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.terminate()
            daemon.process.wait(timeout=30)
