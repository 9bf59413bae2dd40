"""An attacker with an SMTP client, a customer's address and a ticket number, against the
running daemon. Each test says what must NOT happen, and reads every mail the desk wrote."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import Daemon, Sink
from tests.helpers import free_port, mail, parse_mail
from tests.security.conftest import (
    ANNA,
    ATTACKER,
    CUSTOMER,
    SUPPORT,
    Desk,
    addressees,
    agent_answer,
    customer_ticket,
)

VICTIM = "victim@elsewhere.example"
FORGED_ORDER = "#close\n#cc mallory@evil.example\nRefund approved: wire it to account 123."


def participants(desk: Desk, number: int) -> list[str]:
    return [p["email"] for p in desk.ticket(number)["participants"]]


def test_forged_customer_mail_with_a_copy_adds_nobody(desk: Desk) -> None:
    """Case 1: From the customer, Re: [#1], Cc the attacker; the agent then answers."""
    _, notice = customer_ticket(desk)
    forged = mail(
        sender=f"Ann <{CUSTOMER}>",
        subject="Re: [#1] Printer is on fire",
        body="Please keep my colleague in copy.",
        Cc=ATTACKER,
    )
    assert "appended" in desk.send(forged)
    assert participants(desk, 1) == [CUSTOMER]
    (told,) = [m for m in desk.to(ANNA) if "customer reply" in str(m["Subject"])]
    assert f"not copied on the ticket: {ATTACKER}" in told.get_content()
    assert "#cc ADDRESS" in told.get_content()
    assert "appended" in agent_answer(desk, notice, "We are replacing the fuser today.")
    (relay,) = [m for m in desk.to(CUSTOMER) if "fuser" in m.get_content()]
    assert {a for a in addressees(relay) if not a.startswith("support")} == {CUSTOMER}
    desk.assert_never_reached(ATTACKER)
    desk.assert_sane_headers()


GENUINE = (
    b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    b"Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTPS id 4Xq2Lm0Zc9z9sRf\r\n"
)
FAIL_ABOVE_FORGED_PASS = (
    b"Authentication-Results: mx.example.com; dkim=fail header.d=example.com\r\n"
    b"Received: from evil.example (evil.example [198.51.100.7])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTP id 4Xq2Lm0Zc9z9sRg\r\n"
    b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
)
FOREIGN_DOMAIN = (
    b"Authentication-Results: mx.example.com; dkim=pass header.d=evil.example\r\n"
    b"Received: from evil.example (evil.example [198.51.100.7])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTP id 4Xq2Lm0Zc9z9sRh\r\n"
)
SENDER_WRITTEN = b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"


@pytest.mark.parametrize(
    ("trace", "proven"),
    [
        (SENDER_WRITTEN, False),
        (FAIL_ABOVE_FORGED_PASS, False),
        (FOREIGN_DOMAIN, False),
        (GENUINE, True),
    ],
    ids=["written-by-the-sender", "server-says-fail", "dkim-of-another-domain", "genuine"],
)
def test_authentication_results_of_a_forged_agent(desk: Desk, trace: bytes, proven: bool) -> None:
    """Case 2: a forged agent From with #close, #cc and a text to relay."""
    customer_ticket(desk)
    order = mail(sender=f"Anna <{ANNA}>", subject="Re: [#1] Printer is on fire", body=FORGED_ORDER)
    desk.send(trace + order.as_bytes(), mail_from=ANNA)
    ticket = desk.ticket(1)
    relayed = [m for m in desk.to(CUSTOMER) if "Refund approved" in m.get_content()]
    assert (ticket["status"] == "closed") is proven
    assert (ATTACKER in participants(desk, 1)) is proven
    assert len(relayed) == int(proven)
    if proven:
        return  # the control: the same mail with the trusted server's own pass is believed
    desk.assert_never_reached(ATTACKER)
    assert any(e["type"] == "security" for e in ticket["events"])
    assert any("was not accepted" in str(m["Subject"]) for m in desk.to(ANNA))
    desk.assert_sane_headers()


def bounce_of(original: bytes, *failed: str, ident: int = 0) -> bytes:
    reports = b"".join(
        b"Final-Recipient: rfc822; " + a.encode() + b"\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        for a in failed
    )
    return (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.evil.example>\r\n"
        b"To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <bounce." + str(ident).encode() + b"@mx.evil.example>\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        + reports
        + b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        + original
        + b"\r\n--b--\r\n"
    )


def test_fake_bounce_of_the_attackers_own_mail_silences_nobody(desk: Desk) -> None:
    """Case 3: the attacker bounces our acknowledgement to them and lists the victims."""
    customer_ticket(desk)
    desk.send(mail(sender=ATTACKER, subject="Hello"))
    (own_ack,) = desk.to(ATTACKER)
    fake = bounce_of(own_ack.as_bytes(), CUSTOMER, ATTACKER, "boss@example.org")
    assert "suppressed" in desk.send(fake, mail_from="")
    # the one address the bounced mail went to is paused; the others are only recorded
    assert desk.sql("SELECT address FROM suppressions") == [(ATTACKER,)]
    (bounce,) = [e for e in desk.ticket(2)["events"] if e["type"] == "bounce"]
    assert bounce["data"]["failed"] == [ATTACKER]
    assert sorted(bounce["data"]["not_our_recipients"]) == sorted(["boss@example.org", CUSTOMER])
    (told,) = [m.get_content() for m in desk.to(ANNA) if "undeliverable" in str(m["Subject"])]
    assert ATTACKER in told
    assert CUSTOMER not in told and "boss@example.org" not in told
    assert "ticket_created" in desk.send(mail(sender=CUSTOMER, subject="Another question"))
    assert len([m for m in desk.to(CUSTOMER) if m["Auto-Submitted"] == "auto-replied"]) == 2


def survey_links(desk: Desk) -> list[str]:
    (survey,) = [m for m in desk.to(CUSTOMER) if "mailto:" in m.get_content()]
    return [unquote(x).split("?")[0] for x in re.findall(r"mailto:(\S+)", survey.get_content())]


def test_survey_link_in_other_hands_counts_for_nothing(desk: Desk) -> None:
    """Case 6: the attacker answers the survey first; the customer's own answer still counts,
    with its text."""
    _, notice = customer_ticket(desk)
    agent_answer(desk, notice, "The fuser is replaced; does it work now?")
    for days in (2, 4, 6):  # two unanswered reminders, then the close with its survey
        later = (datetime.now(UTC) + timedelta(days=days)).isoformat()
        desk.cli("sweep", "--now", later)
        desk.cli("send-outbox", "--now", later)
    assert desk.ticket(1)["status"] == "closed"
    good, bad = survey_links(desk)
    forged = mail(sender=f"Ann <{ATTACKER}>", to=good, subject="[#1] survey", body="All good!")
    assert "suppressed" in desk.send(forged)
    ticket = desk.ticket(1)
    assert ticket["status"] == "closed"
    assert any(e["type"] == "security" and e["actor"] == ATTACKER for e in ticket["events"])
    own = mail(
        sender=CUSTOMER, to=bad, subject="[#1] survey", body="Please reopen, it still fails."
    )
    assert "appended" in desk.send(own, mail_from=CUSTOMER)
    ticket = desk.ticket(1)
    assert (ticket["status"], ticket["reopen_count"]) == ("open", 1)
    assert "it still fails" in ticket["messages"][-1]["body"]
    (told,) = [m for m in desk.to(ANNA) if "reopened" in str(m["Subject"])]
    assert "Please reopen, it still fails." in told.get_content()
    assert desk.sql("SELECT csat_score FROM tickets WHERE number = 1") == [(1,)]
    desk.assert_never_reached(ATTACKER)


def test_stranger_quoting_the_ticket_number_gets_a_ticket_of_their_own(desk: Desk) -> None:
    ack, _ = customer_ticket(desk)
    before = desk.ticket(1)["messages"]
    stranger = mail(sender=ATTACKER, subject="Re: [#1] Printer is on fire", body="Status?")
    assert "ticket_created" in desk.send(stranger)
    assert participants(desk, 1) == [CUSTOMER]
    assert desk.ticket(1)["messages"] == before
    assert desk.ticket(2)["related_ticket"] is not None
    for message in desk.to(ATTACKER):
        assert str(ack["Reply-To"]) not in message.as_string()
        assert "room 4" not in message.get_content()  # the customer's words


def test_copied_references_give_no_access(desk: Desk) -> None:
    ack, _ = customer_ticket(desk)
    copied = mail(
        sender=ATTACKER,
        subject="Re: Printer is on fire",
        In_Reply_To=str(ack["Message-ID"]),
        References=f"{ack['In-Reply-To']} {ack['Message-ID']}",
    )
    assert "ticket_created" in desk.send(copied)
    assert participants(desk, 1) == [CUSTOMER]
    assert desk.ticket(2)["requester"] == ATTACKER
    assert all(str(ack["Reply-To"]) not in m.as_string() for m in desk.to(ATTACKER))


def test_token_of_another_ticket_or_flipped_proves_nothing(desk: Desk) -> None:
    ack, _ = customer_ticket(desk)
    desk.send(mail(sender=ATTACKER, subject="My own ticket"))
    (own_ack,) = desk.to(ATTACKER)
    own_token_address = str(own_ack["Reply-To"])
    forged = mail(
        sender=f"Ann <{CUSTOMER}>",
        to=own_token_address,
        subject="Re: [#1] Printer is on fire",
        Cc=ATTACKER,
    )
    desk.send(forged)
    customer_token = str(ack["Reply-To"])
    local, _, domain = customer_token.partition("@")
    flipped = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    desk.send(mail(sender=ATTACKER, to=flipped, subject="Re: Printer is on fire", body="Hi"))
    assert participants(desk, 1) == [CUSTOMER]
    assert [t["number"] for t in desk.tickets() if t["requester"] == ATTACKER] == [2, 3]
    assert all(customer_token not in m.as_string() for m in desk.to(ATTACKER))


@pytest.mark.parametrize(
    "sender",
    [f'"{ANNA}" <{ATTACKER}>', f'"Anna <{ANNA}>" <{ATTACKER}>', f'"{CUSTOMER}" <{ATTACKER}>'],
)
def test_display_name_spoofs_are_the_attacker(desk: Desk, sender: str) -> None:
    customer_ticket(desk)
    spoof = mail(sender=sender, subject="Re: [#1] Printer is on fire", body=FORGED_ORDER)
    assert "ticket_created" in desk.send(spoof)
    ticket = desk.ticket(1)
    assert ticket["status"] == "new"
    assert participants(desk, 1) == [CUSTOMER]
    assert [m for m in desk.to(CUSTOMER) if "Refund" in m.get_content()] == []
    assert desk.ticket(2)["requester"] == ATTACKER


def test_crlf_in_encoded_subject_and_display_name_injects_no_header(desk: Desk) -> None:
    injected = (
        f"From: =?utf-8?q?Ann=0D=0ABcc:_{VICTIM}?= <{ATTACKER}>\r\n"
        f"To: {SUPPORT}\r\n"
        f"Subject: =?utf-8?q?Hello=0D=0ABcc:_{VICTIM}=0D=0AX-Evil:_1?=\r\n"
        "Message-ID: <crlf-1@evil.example>\r\n\r\nHello\r\n"
    ).encode()
    assert "ticket_created" in desk.send(injected)
    mails = desk.mails()
    assert len(mails) == 2  # the acknowledgement and Anna's notice
    assert all(m["X-Evil"] is None for m in mails)
    desk.assert_never_reached(VICTIM)
    desk.assert_sane_headers()


@pytest.mark.parametrize(
    "name", ["../../../../tmp/owned.txt", "..\\..\\boot.ini", "CON", "NUL.txt", "com1.log", ".."]
)
def test_attachment_names_cannot_reach_the_file_system(
    desk: Desk, name: str, tmp_path: Path
) -> None:
    message = mail(sender=CUSTOMER, subject="Files")
    message.add_attachment(
        b"payload", maintype="application", subtype="octet-stream", filename=name
    )
    assert "ticket_created" in desk.send(message)
    (attachment,) = desk.ticket(1)["messages"][0]["attachments"]
    stored = attachment["filename"]
    assert "/" not in stored and "\\" not in stored and not stored.startswith(".")
    assert stored.split(".")[0].upper() not in {"CON", "NUL", "COM1"}
    (notice,) = desk.to(ANNA)
    for part in notice.iter_attachments():
        assert part.get_filename() == stored
    assert not Path("/tmp/owned.txt").exists()
    written = [p for p in tmp_path.rglob("*") if p.name in ("owned.txt", "boot.ini")]
    assert written == []


def test_no_open_relay(desk: Desk) -> None:
    with smtplib.SMTP("127.0.0.1", desk.daemon.smtp_port) as client:
        client.ehlo("client.example")
        client.mail(ATTACKER)
        assert client.rcpt(VICTIM)[0] == 550
        assert client.rcpt(f"support@{VICTIM.split('@')[1]}")[0] == 550
        assert client.rcpt(f"{SUPPORT}.evil.example")[0] == 550
    desk.assert_never_reached(VICTIM)


def test_a_thousand_recipients_make_one_ticket(desk: Desk) -> None:
    with smtplib.SMTP("127.0.0.1", desk.daemon.smtp_port) as client:
        client.ehlo("client.example")
        client.mail(ATTACKER)
        strangers = {client.rcpt(f"user{i}@elsewhere.example")[0] for i in range(500)}
        ours = {client.rcpt(f"support+x{i}@example.com")[0] for i in range(500)}
        code, _ = client.data(mail(sender=ATTACKER, subject="Many").as_bytes())
    assert strangers <= {550, 452}
    assert 250 in ours and ours <= {250, 452}
    assert code == 250
    assert len(desk.tickets()) == 1
    assert len(desk.to(ATTACKER)) == 1
    assert all(
        a.endswith("@example.com") or a == ATTACKER for m in desk.mails() for a in addressees(m)
    )


def test_bounce_storm_opens_no_ticket_and_mails_no_customer(desk: Desk) -> None:
    ack, _ = customer_ticket(desk)
    for i in range(20):
        desk.send(bounce_of(ack.as_bytes(), CUSTOMER, ident=i), mail_from="")
        fake_id = f"Message-ID: <pd.t1x{'a' * 16}.{i}@example.com>\r\n\r\nx".encode()
        desk.send(bounce_of(fake_id, VICTIM, ident=100 + i), mail_from="")
    assert len(desk.tickets()) == 1
    assert desk.sql("SELECT address FROM suppressions") == [(CUSTOMER,)]
    assert len(desk.to(CUSTOMER)) == 1  # the acknowledgement before the storm, nothing since
    desk.assert_never_reached(VICTIM)
    everyone = {a for m in desk.mails() for a in addressees(m) if not a.startswith("support")}
    assert everyone == {CUSTOMER, ANNA}


@pytest.mark.parametrize(
    ("on_followup", "in_thread"),
    [(False, True), (True, True), (True, False)],
    ids=["replies-unacknowledged", "replies-acknowledged", "new-subject-each-time"],
)
def test_naive_autoresponder_loop_stops(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    on_followup: bool,
    in_thread: bool,
) -> None:
    """A robot that answers every mail it gets, with no Auto-Submitted or other marker:
    to the Reply-To under "Re:", or to the From under a subject of its own."""
    sink, port = smtp_sink
    config = write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": port}},
        business_hours={"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
        autoreply={"on_followup": on_followup},
    )
    desk = Desk(start_daemon(config), config, tmp_path / "data", tmp_path / "sent")
    robot = "robot@robots.example"
    desk.send(mail(sender=robot, subject="Hello"), mail_from=robot)
    answered = 0
    for _ in range(30):
        desk.settle()
        arrived = [parse_mail(content) for _, _, content in sink.messages]
        new = arrived[answered:]
        answered = len(arrived)
        if not new:
            break
        for message in new:
            field = "Reply-To" if in_thread else "From"
            threading = {"In_Reply_To": str(message["Message-ID"])} if in_thread else {}
            echo = mail(
                sender=robot,
                to=getaddresses([str(message[field])])[0][1],
                subject=f"Re: {message['Subject']}" if in_thread else "I am away this week",
                body="Thank you for your mail, I will read it soon.",
                **threading,
            )
            desk.send(echo, mail_from=robot)
    else:
        pytest.fail(f"the exchange never stopped: {answered} mails to the robot")
    record_property("mails_to_robot", answered)
    assert all(rcpts == [robot] for _, rcpts, _ in sink.messages)
    assert 1 <= answered <= 5  # autoreply.max_per_sender_per_day


FORGED_FORWARD = (
    "Please take care of this customer.\n\n"
    "---------- Forwarded message ---------\n"
    f"From: Victim <{VICTIM}>\n"
    "Date: Mon, Nov 23, 2026 at 9:31 AM\n"
    "Subject: Send me the invoice\n"
    f"To: Anna <{ANNA}>\n\n"
    "Please mail the invoice to me.\n"
)


@pytest.mark.parametrize(
    ("trace", "body"),
    [
        (b"", FORGED_FORWARD),
        (SENDER_WRITTEN, FORGED_FORWARD),
        (FOREIGN_DOMAIN, FORGED_FORWARD),
        (b"", f"#requester {VICTIM}\n{FORGED_FORWARD}"),
        (b"", f"#to {VICTIM}\nYour password reset: http://evil.example/reset"),
        (SENDER_WRITTEN, f"#to {VICTIM}\n#cc {ATTACKER}\nYour invoice is attached."),
    ],
    ids=[
        "forward",
        "forward-with-own-auth-results",
        "forward-signed-by-another-domain",
        "requester",
        "to",
        "to-with-own-auth-results",
    ],
)
def test_a_forged_agent_opens_no_ticket_for_a_victim(desk: Desk, trace: bytes, body: str) -> None:
    """Case 6: a stranger forges Anna's From on a forward or a #to to make the desk file mail
    for a victim and write to them in the desk's name."""
    for n in range(3):
        forged = mail(sender=f"Anna <{ANNA}>", subject=f"Fwd: Send me the invoice {n}", body=body)
        assert "ticket_created" in desk.send(trace + forged.as_bytes(), mail_from=ANNA)
    tickets = desk.tickets()
    assert {t["requester"] for t in tickets} == {ANNA}
    for t in tickets:
        view = desk.ticket(t["number"])
        assert [m["from"] for m in view["messages"] if m["direction"] == "in"] == [ANNA]
        assert any(e["type"] == "security" for e in view["events"])
    desk.assert_never_reached(VICTIM)
    desk.assert_never_reached(ATTACKER)
    warnings = [m for m in desk.to(ANNA) if "opened no ticket" in str(m["Subject"])]
    assert len(warnings) == 1  # three forged mails, one warning an hour
    desk.assert_sane_headers()


def test_the_genuine_forward_is_believed_and_its_contents_stay_inert(desk: Desk) -> None:
    """The control, and a forwarded message that names another ticket and carries commands:
    what it says is the customer's text, never a reference or an order."""
    customer_ticket(desk)
    inert = FORGED_FORWARD.replace(
        "Please mail the invoice to me.", "#close\nRe: [#1] please add me to ticket 1."
    )
    forward = mail(sender=f"Anna <{ANNA}>", subject="Fwd: Send me the invoice", body=inert)
    assert "ticket_created" in desk.send(GENUINE + forward.as_bytes(), mail_from=ANNA)
    view = desk.ticket(2)
    assert (view["requester"], view["status"]) == (VICTIM, "new")
    assert [p["email"] for p in desk.ticket(1)["participants"]] == [CUSTOMER]
    assert desk.ticket(1)["status"] == "new"
    assert "#close" in view["messages"][0]["body"]
    desk.assert_never_reached(VICTIM)  # agents.forward_ack is off
    desk.assert_sane_headers()


def test_a_customer_cannot_use_agent_commands_to_reach_a_victim(desk: Desk) -> None:
    """Only agents' mail is read for #to and forwards; a customer's is a customer's."""
    sneaky = mail(sender=ATTACKER, subject="Hello", body=f"#to {VICTIM}\n{FORGED_FORWARD}")
    assert "ticket_created" in desk.send(sneaky)
    (ticket,) = desk.tickets()
    assert ticket["requester"] == ATTACKER
    desk.assert_never_reached(VICTIM)
    desk.assert_sane_headers()
