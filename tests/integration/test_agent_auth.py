"""Authentication-Results as real servers write them: only the trusted server's own fields
count, a failing verdict wins, and a pass counts only for the agent's own domain."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.tickets import detail, load_ticket
from tests.helpers import DATA, mail

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
AUTH = DATA / "auth"
ROWS = list(csv.DictReader((AUTH / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
FORGED_PASS = "Authentication-Results: {server}; dkim=pass header.d=example.com\n"


def fixture(
    row: dict[str, str], dkim: str = "pass", domain: str = "example.com", forged: str = ""
) -> bytes:
    text = (AUTH / row["path"]).read_text(encoding="utf-8")
    text = text.replace("{DKIM}", dkim).replace("{AUTH_DOMAIN}", domain).replace("{FORGED}", forged)
    return text.replace("\n", "\r\n").encode("utf-8")


def desk(open_app: Callable[..., App], row: dict[str, str]) -> App:
    app = open_app(
        agent_auth={
            "trusted_authserv_ids": row["trusted_authserv_ids"].split(),
            "trusted_hosts": row["trusted_hosts"].split(),
            "writes_below_received": row["writes_below_received"].split(),
        },
        business_hours={"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
    )
    assert ingest(app, mail().as_bytes(), "smtp", NOW).outcome == "ticket_created"
    return app


def outcome(app: App, raw: bytes) -> tuple[str, list[str]]:
    """The ticket's priority after the agent's mail and the kinds of mail it caused."""
    ingest(app, raw, "smtp", NOW)
    with app.db.transaction() as session:
        ticket = load_ticket(session, "1")
        assert ticket is not None
        view = detail(ticket, NOW)
    return view["priority"], [m["kind"] for m in view["messages"] if m["direction"] == "out"]


def ids(row: dict[str, str]) -> str:
    return row["path"].removesuffix(".eml")


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_the_servers_own_aligned_pass_proves_the_agent(
    open_app: Callable[..., App], row: dict[str, str]
) -> None:
    app = desk(open_app, row)
    priority, sent = outcome(app, fixture(row))
    assert priority == "high"
    assert sent.count("agent") == 1


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_a_failing_verdict_of_the_server_wins_over_a_forged_pass(
    open_app: Callable[..., App], row: dict[str, str]
) -> None:
    app = desk(open_app, row)
    server = row["trusted_authserv_ids"].split()[0]
    raw = fixture(row, dkim="fail", forged=FORGED_PASS.format(server=server))
    priority, sent = outcome(app, raw)
    assert priority == "normal"
    assert "agent" not in sent


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_a_pass_for_another_domain_proves_nothing(
    open_app: Callable[..., App], row: dict[str, str]
) -> None:
    app = desk(open_app, row)
    priority, sent = outcome(app, fixture(row, domain="attacker.example"))
    assert priority == "normal"
    assert "agent" not in sent


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_a_pass_written_by_the_sender_alone_proves_nothing(
    open_app: Callable[..., App], row: dict[str, str]
) -> None:
    """The mail reached postdesk by another hop: every field below that hop came with it,
    a Received field that names the trusted server included."""
    app = desk(open_app, row)
    server = row["trusted_authserv_ids"].split()[0]
    forged = mail(
        sender="Anna <anna@example.com>",
        subject="Re: [#1] Printer is on fire",
        body="#priority high\nLooking into it.",
        Authentication_Results=f"{server}; dkim=pass header.d=example.com",
        Received=f"from mail.example.com (mail.example.com [192.0.2.10]) by {server} with ESMTP",
    )
    as_text = forged.as_bytes()
    # the sender's fields stand below a Received field of an untrusted hop into postdesk
    raw = b"Received: from evil.example (evil.example [198.51.100.7]) by desk.local\r\n" + as_text
    priority, sent = outcome(app, raw)
    assert priority == "normal"
    assert "agent" not in sent
