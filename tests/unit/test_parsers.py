"""The parser on messages built for one property each: charsets, HTML, attachments, threading
references, classification and agent commands."""

from __future__ import annotations

import contextlib
import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.config.errors import BadData
from postdesk.parsers import parse
from postdesk.parsers.commands import commands, without_commands
from postdesk.parsers.mime import safe_filename
from postdesk.parsers.model import Kind, ParseContext
from postdesk.parsers.references import make_token, message_ids, verify_token
from tests.helpers import DATA, mail

SECRET = b"k" * 32


def context(**overrides: object) -> ParseContext:
    stored: dict[str, bytes] = {}

    def keep(data: bytes) -> str:
        stored[str(len(stored))] = data
        return str(len(stored))

    fields: dict[str, object] = {
        "own_addresses": frozenset({"support@example.com"}),
        "agent_addresses": frozenset({"anna@example.com"}),
        "secret": SECRET,
        "loop_marker": "support@example.com",
        "store_blob": keep,
    }
    fields.update(overrides)
    return ParseContext(**fields)  # type: ignore[arg-type]


def raw_8bit(subject: bytes, body: bytes, charset: bytes | None) -> bytes:
    ctype = b"text/plain" + (b"; charset=" + charset if charset else b"")
    return (
        b"From: =?utf-8?b?0JDQvdC90LA=?= <anna@example.ru>\r\nTo: support@example.com\r\n"
        b"Subject: " + subject + b"\r\nMessage-ID: <a@example.ru>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    )


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251", "utf-8"])
def test_russian_text_in_any_charset(charset: str) -> None:
    text = "Не работает оплата счёта"
    subject = f"=?{charset}?B?".encode() + _b64(text.encode(charset)) + b"?="
    msg = parse(raw_8bit(subject, text.encode(charset), charset.encode()), context())
    assert msg.subject == text
    assert msg.text == text
    assert msg.from_name == "Анна"
    assert msg.defects == ()


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251"])
def test_undeclared_russian_8bit_is_guessed_and_noted(charset: str) -> None:
    text = "Принтер не печатает, помогите пожалуйста"
    msg = parse(raw_8bit(text.encode(charset), text.encode(charset), None), context())
    assert msg.subject == text
    assert msg.text == text
    assert any("read as" in d for d in msg.defects)


def test_unknown_charset_does_not_lose_the_text() -> None:
    msg = parse(raw_8bit(b"Hello", "Grüße".encode(), b"x-no-such-charset"), context())
    assert msg.text == "Grüße"
    assert any("x-no-such-charset" in d for d in msg.defects)


def test_charset_name_with_a_null_byte_is_survived() -> None:
    msg = parse(raw_8bit(b"Hello", b"plain text", b'"utf\x00-8"'), context())
    assert msg.text == "plain text"
    assert any("failed" in d for d in msg.defects)


def test_html_only_mail_becomes_readable_text() -> None:
    source = mail()
    source.set_content(
        "<html><body><p>Order <b>#123</b> is late.</p><ul><li>one</li></ul>"
        "<script>alert(1)</script></body></html>",
        subtype="html",
    )
    msg = parse(source.as_bytes(), context())
    assert "Order #123 is late." in msg.text
    assert "one" in msg.text
    assert "<b>" not in msg.text and "alert" not in msg.text
    assert msg.html is not None and "<b>" in msg.html


def test_attachments_are_stored_with_safe_names() -> None:
    source = mail()
    source.add_attachment(
        b"%PDF-1.4", maintype="application", subtype="pdf", filename="../../etc/\u202epasswd.pdf"
    )
    source.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="")
    kept: list[bytes] = []
    msg = parse(source.as_bytes(), context(store_blob=lambda d: kept.append(d) or "x"))
    names = [a.filename for a in msg.attachments]
    assert names == ["passwd.pdf", "attachment-2.png"]
    assert kept == [b"%PDF-1.4", b"\x89PNG"]
    assert msg.attachments[0].size == 8 and msg.attachments[0].stored


def test_attachment_over_the_limit_is_recorded_not_stored() -> None:
    source = mail()
    source.add_attachment(b"x" * 5000, maintype="application", subtype="zip", filename="big.zip")
    kept: list[bytes] = []
    msg = parse(
        source.as_bytes(),
        context(store_blob=lambda d: kept.append(d) or "x", max_attachment_bytes=1000),
    )
    assert kept == []
    assert msg.attachments[0].size == 5000 and not msg.attachments[0].stored
    assert any("big.zip" in d and "over the limit" in d for d in msg.defects)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("C:\\Users\\a\\report.docx", "report.docx"),
        ("  .hidden ", "hidden"),
        ("", "attachment-1.pdf"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name, "application/pdf", 0) == expected


def test_reply_part_and_references() -> None:
    token = make_token(SECRET, 42)
    source = mail(
        subject="Re: Printer [#7]",
        body="It works now, thanks!\n\nOn Mon, 23 Nov 2026 at 10:00, Support wrote:\n> old text\n",
        to=f"support+{token}@example.com",
        In_Reply_To=f"<pd.{token}.abc@example.com>",
        References="<first@example.org> <second@example.org>",
    )
    msg = parse(source.as_bytes(), context())
    assert msg.new_text == "It works now, thanks!"
    assert "old text" in msg.text
    assert msg.ticket_number == 7
    assert msg.token_tickets == (42,)
    assert msg.in_reply_to == (f"pd.{token}.abc@example.com",)
    assert msg.references == ("first@example.org", "second@example.org")


def test_forged_or_foreign_tokens_prove_nothing() -> None:
    token = make_token(SECRET, 42)
    assert verify_token(SECRET, token) == 42
    assert verify_token(SECRET, token.replace("t42", "t43")) is None
    assert verify_token(b"other secret", token) is None
    assert verify_token(SECRET, "t42xshort") is None


def test_message_ids_without_brackets() -> None:
    assert message_ids("abc@example.org, <d@e>") == ("d@e",)
    assert message_ids("abc@example.org def@example.org") == ("abc@example.org", "def@example.org")


@pytest.mark.parametrize(
    ("headers", "sender", "kind"),
    [
        ({"Auto-Submitted": "auto-replied"}, "ann@example.org", Kind.AUTOREPLY),
        ({"Auto-Submitted": "no"}, "ann@example.org", Kind.CUSTOMER),
        ({"X-Autoreply": "yes"}, "ann@example.org", Kind.AUTOREPLY),
        ({"Subject": "Автоответ: Re: счёт"}, "ann@example.org", Kind.AUTOREPLY),
        ({"Subject": "Out of Office: Printer"}, "ann@example.org", Kind.AUTOREPLY),
        ({"Precedence": "bulk"}, "news@example.org", Kind.BULK),
        ({"List-Id": "<users.lists.example.org>"}, "ann@example.org", Kind.BULK),
        ({"X-Spam-Flag": "YES"}, "ann@example.org", Kind.BULK),
        ({"Return-Path": "<>"}, "ann@example.org", Kind.AUTOREPLY),
        ({}, "noreply@shop.example", Kind.BULK),
        ({}, "MAILER-DAEMON@mx.example.org", Kind.BOUNCE),
        (
            {"Subject": "Undelivered Mail Returned to Sender", "Return-Path": "<>"},
            "mail@mx.example.org",
            Kind.BOUNCE,
        ),
        ({"X-Postdesk-Loop": "support@example.com"}, "ann@example.org", Kind.LOOP),
        ({}, "support+t1xabc@example.com", Kind.LOOP),
        ({}, "anna@example.com", Kind.AGENT),
        ({}, "ann@example.org", Kind.CUSTOMER),
    ],
)
def test_classification(headers: dict[str, str], sender: str, kind: Kind) -> None:
    subject = headers.pop("Subject", "Printer is on fire")
    source = mail(
        sender=sender, subject=subject, **{k.replace("-", "_"): v for k, v in headers.items()}
    )
    msg = parse(source.as_bytes(), context())
    assert msg.kind == kind, msg.kind_reason


def test_delivery_status_report_is_a_bounce_with_recipients() -> None:
    raw = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        b"To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.org\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--b--\r\n"
    )
    msg = parse(raw, context())
    assert msg.kind == Kind.BOUNCE
    assert msg.bounced_recipients == ("gone@example.org",)
    assert [a.filename for a in msg.attachments] == ["attachment-1.eml"]


def test_agent_commands_only_at_the_top() -> None:
    found = commands("#assign boris\n#priority high\n\nPlease check #5 tomorrow\n#close")
    assert [(c.name, c.argument) for c in found] == [("assign", "boris"), ("priority", "high")]
    assert without_commands("#assign boris\n#priority high\n\nHello", found) == "Hello"
    assert commands("Hello\n#close") == ()
    assert commands("#hashtag tomorrow") == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"just some text without headers\n", "not a mail message"),
        (b"Subject: hi\r\nTo: support@example.com\r\n\r\nbody\r\n", "no sender address"),
        (
            b"From: a@example.org\r\nFrom: b@example.org\r\nSubject: x\r\n\r\nbody\r\n",
            "several From",
        ),
        (
            b"From: =?x-unknown?q?=E9?=@0 <a@example.org>\r\nSubject: x\r\n\r\nbody\r\n",
            "no sender address",
        ),
    ],
)
def test_what_cannot_be_a_ticket_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(BadData, match=reason):
        parse(raw, context())


def test_long_subject_is_cut_and_noted() -> None:
    msg = parse(mail(subject="x" * 5000).as_bytes(), context())
    assert len(msg.subject) == 998
    assert any("subject of" in d for d in msg.defects)


def test_header_with_newline_injection_is_flattened() -> None:
    raw = (
        b"From: ann@example.org\r\nSubject: =?utf-8?q?Hi=0D=0ABcc=3A_evil@example.net?=\r\n"
        b"To: support@example.com\r\n\r\nbody\r\n"
    )
    msg = parse(raw, context())
    assert "\n" not in msg.subject and "\r" not in msg.subject
    assert msg.subject == "Hi Bcc: evil@example.net"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise_anything_but_bad_data(raw: bytes) -> None:
    with contextlib.suppress(BadData):
        parse(raw, context())


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_mail_never_raises_anything_but_bad_data(data: st.DataObject) -> None:
    source = mail()
    source.add_attachment(b"abc", maintype="application", subtype="pdf", filename="a.pdf")
    raw = bytearray(source.as_bytes())
    for _ in range(data.draw(st.integers(1, 20))):
        where = data.draw(st.integers(0, len(raw) - 1))
        raw[where] = data.draw(st.integers(0, 255))
    with contextlib.suppress(BadData):
        parse(bytes(raw), context())


def _b64(data: bytes) -> bytes:
    import base64

    return base64.b64encode(data)


MACHINE = list(
    csv.DictReader((DATA / "machine" / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
)


@pytest.mark.parametrize("row", MACHINE, ids=[r["path"] for r in MACHINE])
def test_machine_mail_without_list_or_auto_headers_is_recognised(row: dict[str, str]) -> None:
    msg = parse((DATA / "machine" / row["path"]).read_bytes(), context())
    assert (msg.kind, row["source"] and row["licence"]) == (Kind(row["kind"]), row["licence"])


@pytest.mark.parametrize("to", ["undisclosed-recipients:;", "Undisclosed recipients:;"])
def test_mail_to_blind_copies_only_is_a_persons(to: str) -> None:
    msg = parse(mail(to=to).as_bytes(), context())
    assert msg.kind == Kind.CUSTOMER


def test_a_facebook_lookalike_domain_is_no_notification() -> None:
    msg = parse(mail(sender="Ann <ann@notfacebookmail.com>").as_bytes(), context())
    assert msg.kind == Kind.CUSTOMER


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (
            b"Printer =?utf-8?B?SGVsbG8gd29ybGQhx?= broken",
            "Printer =?utf-8?B?SGVsbG8gd29ybGQhx?= broken",
        ),
        (
            b"=?utf-8?B?0J/RgNC40LLQtdGC?= =?utf-8?B?SGVsbG8gd29ybGQhx?=",
            "Привет =?utf-8?B?SGVsbG8gd29ybGQhx?=",
        ),
    ],
)
def test_undecodable_encoded_word_is_kept_and_recorded(subject: bytes, expected: str) -> None:
    raw = b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: " + subject
    msg = parse(raw + b"\r\n\r\nHello\r\n", context())
    assert msg.subject == expected
    assert any("undecodable encoded word" in d and d.startswith("Subject:") for d in msg.defects)
