"""The running daemon: an agent forwards a customer's mail and writes a `#to` mail to its
SMTP listener, and the sink (the customer's and the agent's mail server) reads what left."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from tests.conftest import Daemon, Sink
from tests.helpers import DATA, free_port, mail, parse_mail, postdesk

ANNA = "anna@example.com"
BRAND2 = "help@brand2.example"
TRUSTED = (
    b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    b"Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTPS id 4Xq2Lm0Zc9z9sRf\r\n"
)


def addresses(message: EmailMessage, field: str) -> list[str]:
    return [a.lower() for _, a in getaddresses([str(v) for v in message.get_all(field, [])])]


def test_forward_and_to_through_the_listener(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
) -> None:
    sink, sink_port = smtp_sink
    config = write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
        support_addresses=["support@example.com", {"address": BRAND2, "name": "Brand2 Help"}],
        agents={"forward_ack": True, "team": [{"email": ANNA, "name": "Anna"}]},
        agent_auth={"trusted_authserv_ids": ["mx.example.com"]},
    )
    daemon = start_daemon(config)
    forwarded = (DATA / "forwards" / "attached_outlook_en.eml").read_bytes()
    forwarded = forwarded.replace(b"To: support@example.com", f"To: {BRAND2}".encode())
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.sendmail(ANNA, [BRAND2], TRUSTED + forwarded)
    arrived = {tuple(rcpts): parse_mail(raw) for _, rcpts, raw in _wait(sink, 2)}
    ack = arrived[("ann@example.org",)]
    assert getaddresses([str(ack["From"])]) == [("Brand2 Help", BRAND2)]
    assert addresses(ack, "To") == ["ann@example.org"] and addresses(ack, "Cc") == []
    assert "[#1]" in str(ack["Subject"]) and "Printer is on fire" in str(ack["Subject"])
    summary = arrived[(ANNA,)]
    assert addresses(summary, "From") == [BRAND2] and addresses(summary, "Cc") == []
    assert "ticket #1 opened for ann@example.org" in summary.get_content()
    view = json.loads(_shown(config, "--json"))
    customer, note = [m for m in view["messages"] if m["direction"] == "in"]
    assert (customer["kind"], customer["from"], customer["author"]) == (
        "customer",
        "ann@example.org",
        None,
    )
    assert customer["attachments"][0]["filename"] == "invoice-4471.pdf"
    assert (note["kind"], note["from"], note["author"]) == ("note", ANNA, ANNA)
    shown = _shown(config)
    assert "in customer from ann@example.org" in shown and "in note from anna@example.com" in shown

    outbound = mail(
        sender=f"Anna <{ANNA}>",
        subject="Your refund",
        body="#to bob@example.net\n#tag billing\nHello Bob, the refund left today.",
    )
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.sendmail(ANNA, ["support@example.com"], TRUSTED + outbound.as_bytes())
    later = _wait(sink, 4)[2:]
    by_rcpt = {tuple(rcpts): parse_mail(raw) for _, rcpts, raw in later}
    relay = by_rcpt[("bob@example.net",)]
    assert getaddresses([str(relay["From"])]) == [("Anna (support)", "support@example.com")]
    assert addresses(relay, "To") == ["bob@example.net"] and addresses(relay, "Cc") == []
    assert str(relay["Subject"]) == "Your refund [#2]"
    assert relay.get_content().strip() == "Hello Bob, the refund left today."
    assert addresses(by_rcpt[(ANNA,)], "To") == [ANNA]
    assert {mail_from for mail_from, _, _ in later} == {"support@example.com"}


def _shown(config: Path, *args: str) -> str:
    """`postdesk tickets show 1` as the admin reads it."""
    done = postdesk(config, "tickets", "show", "1", *args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _wait(sink: Sink, count: int) -> list[tuple[str, list[str], bytes]]:
    sink.wait_for(count)
    return list(sink.messages)
