"""Hostile mail through the whole ingest path: the daemon keeps everything, writes nowhere
but its data folder, and never lets customer text inject a header into its own mail."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.models import Inbound, Outbox, Participant
from tests import hostile_mime
from tests.helpers import mail, parse_mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OUTCOMES = {"ticket_created", "appended", "duplicate", "quarantined", "suppressed"}
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def files_outside(root: Path, inside: list[Path]) -> set[Path]:
    return {
        p for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(i) for i in inside)
    }


def acknowledgements(app: Any) -> list[bytes]:
    with app.db.transaction() as session:
        return list(session.scalars(select(Outbox.content).where(Outbox.kind == "autoreply")))


def test_injection_through_subject_and_name_never_reaches_our_headers(app: Any) -> None:
    raw = (
        b"From: =?utf-8?q?Ann=0D=0ABcc=3A_victim@example.net?= <ann@example.org>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: =?utf-8?q?Help=0D=0ABcc=3A_victim@example.net=0D=0A=0D=0Abody?=\r\n"
        b"Message-ID: <x1@example.org>\r\n\r\nhello\r\n"
    )
    assert ingest(app, raw, "smtp", NOW).outcome == "ticket_created"
    (ack,) = acknowledgements(app)
    head = ack.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc:") for line in head.split(b"\r\n"))
    parsed = parse_mail(ack)
    assert parsed["Bcc"] is None
    assert parsed["To"] == "ann@example.org"


def test_ten_thousand_recipients_make_a_bounded_ticket(app: Any) -> None:
    crowd = ", ".join(f"user{i}@example.net" for i in range(10_000))
    result = ingest(app, mail(Cc=crowd).as_bytes(), "smtp", NOW)
    assert result.outcome == "ticket_created"
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Participant)) <= 21
        (row,) = session.scalars(select(Outbox))
        assert row.recipients == ["ann@example.org"]


def test_files_never_land_outside_the_data_folder(app: Any, tmp_path: Path) -> None:
    source = mail()
    for name in (
        "../../../../tmp/evil.sh",
        "..\\..\\win.ini",
        "a\x00b.txt",
        "\u202egnp.exe",
        "/etc/passwd",
    ):
        source.add_attachment(
            b"payload", maintype="application", subtype="octet-stream", filename=name
        )
    before = files_outside(tmp_path, [tmp_path / "data", tmp_path / "sent"])
    assert ingest(app, source.as_bytes(), "smtp", NOW).outcome == "ticket_created"
    assert files_outside(tmp_path, [tmp_path / "data", tmp_path / "sent"]) == before
    assert not Path("/tmp/evil.sh").exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.org\r\nSubject: " + b"x" * 1_000_000 + b"\r\n\r\nbody\r\n",
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"".join(
            b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" for _ in range(5000)
        ),
        b"From: a@example.org\r\nSubject: " + b"=?x-unknown-8?q?=E9?= " * 2000 + b"\r\n\r\nhi\r\n",
        b"From: a@example.org\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>hi",
        b"\x00\xff" * 50_000,
        b"From: a@example.org\r\n"
        + b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
            for i in range(300)
        )
        + b"Content-Type: text/plain\r\n\r\ndeep\r\n",
        b"From: a@example.org\r\nContent-Type: text/plain; charset=x-klingon\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xd0\x9f\xd1\x80\xd0\xb8 \xff\xfe\r\n",
    ],
    ids=[
        "1MB header",
        "boundary bomb",
        "encoded-word abuse",
        "script",
        "binary",
        "300 nested multiparts",
        "unknown body charset",
    ],
)
def test_hostile_messages_are_kept_and_never_crash(app: Any, raw: bytes) -> None:
    result = ingest(app, raw, "smtp", NOW)
    assert result.outcome in OUTCOMES
    assert app.raw.path(hashlib.sha256(raw).hexdigest()).exists()
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Inbound)) == 1
    for ack in acknowledgements(app):
        assert b"<script>" not in ack


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(min_size=1, max_size=2000), min_size=1, max_size=5))
def test_arbitrary_bytes_are_always_kept(app: Any, blobs: list[bytes]) -> None:
    for raw in blobs:
        assert ingest(app, raw, "pipe", NOW).outcome in OUTCOMES
        assert app.raw.path(hashlib.sha256(raw).hexdigest()).exists()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(hostile_mime.messages(), min_size=1, max_size=3))
def test_generated_hostile_mime_is_kept_and_injects_nothing(
    app: Any, tmp_path: Path, raws: list[bytes]
) -> None:
    before = files_outside(tmp_path, [tmp_path / "data", tmp_path / "sent"])
    for raw in raws:
        assert ingest(app, raw, "smtp", NOW).outcome in OUTCOMES
        assert app.raw.path(hashlib.sha256(raw).hexdigest()).exists()
    with app.db.transaction() as session:
        sent = list(session.scalars(select(Outbox.content)))
    for content in sent:
        head = content.split(b"\r\n\r\n", 1)[0].lower()
        names = {line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1].strip()}
        assert not names & {name.encode() for name in hostile_mime.INJECTED}
    assert files_outside(tmp_path, [tmp_path / "data", tmp_path / "sent"]) == before
