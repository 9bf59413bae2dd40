"""Our mail is written straight to bytes: read back by the standard library it must say what
an ``EmailMessage`` composed by the standard library says, header by header and part by part,
in every language, from every brand, and with the lines SMTP allows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import pytest

from postdesk.autoreplies.render import SAMPLE, Rendered, Templates, compose, one_line
from postdesk.parsers.header_registry import SMTP

BRANDS = [
    "support@example.com",
    formataddr(("Example Support", "support@example.com")),
    formataddr(("Служба поддержки «Пример»", "help@example.ru")),
]
WHEN = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)


def variables(subject: str) -> dict[str, Any]:
    return {**SAMPLE, "ticket": {**SAMPLE["ticket"], "number": 17, "subject": subject}}


def by_the_standard_library(
    rendered: Rendered,
    fields: dict[str, str],
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """The reference, as postdesk composed mail before it wrote bytes itself: every field set
    on an EmailMessage (ASCII as it is, a non-ASCII subject encoded as RFC 2047 asks, any
    other value parsed by the policy), the parts added by its content manager, the whole
    written by its generator."""
    mail = EmailMessage(policy=SMTP)
    for name, value in fields.items():
        value = one_line(value)
        if value.isascii():
            mail.set_raw(name, value)
        elif name == "Subject":
            mail.set_raw(name, Header(value, "utf-8", header_name=name).encode())
        else:
            mail[name] = value
    mail.set_content(rendered.text, charset="utf-8")
    if rendered.html is not None:
        mail.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


def composed(
    rendered: Rendered, from_addr: str, attachments: Sequence[tuple[str, str, bytes]] = ()
) -> tuple[bytes, bytes]:
    """Ours and the reference, for the same mail."""
    ours = compose(
        rendered,
        from_addr=from_addr,
        to="Анна Петрова <anna@example.org>",
        cc=["bob@example.org", "Сергей <sergey@example.org>"],
        message_id="pd.t17xabc.1@example.com",
        date=WHEN,
        in_reply_to="m2@example.org",
        references=[f"m{i}@example.org" for i in range(12)],
        auto_submitted="auto-replied",
        loop_marker="support@example.com",
        extra_headers={"Reply-To": "support+t17xabc@example.com"},
        attachments=attachments,
    )
    fields = {
        "From": from_addr,
        "To": "Анна Петрова <anna@example.org>",
        "Cc": "bob@example.org, Сергей <sergey@example.org>",
        "Subject": rendered.subject,
        "Date": format_datetime(WHEN),
        "Message-ID": "<pd.t17xabc.1@example.com>",
        "In-Reply-To": "<m2@example.org>",
        "References": ours_references(ours.content),
        "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All",
        "X-Postdesk-Loop": "support@example.com",
        "Reply-To": "support+t17xabc@example.com",
    }
    return ours.content, by_the_standard_library(rendered, fields, attachments)


def ours_references(raw: bytes) -> str:
    """References are computed by ``thread_references``, whose own test holds them."""
    return str(message_from_bytes(raw, policy=policy.default)["References"])


def assert_same_mail(ours: bytes, reference: bytes) -> None:
    mine = message_from_bytes(ours, policy=policy.default)
    theirs = message_from_bytes(reference, policy=policy.default)
    assert not mine.defects
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for name in theirs:
        if name.lower() != "content-type" or not theirs.is_multipart():
            assert str(mine[name]) == str(theirs[name]), name
    mine_parts, their_parts = list(mine.walk()), list(theirs.walk())
    assert [p.get_content_type() for p in mine_parts] == [p.get_content_type() for p in their_parts]
    for a, b in zip(mine_parts, their_parts, strict=True):
        assert a.get_content_charset() == b.get_content_charset()
        assert a.get_filename() == b.get_filename()
        if not a.is_multipart():
            assert a.get_content() == b.get_content()
    lines = ours.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in ours.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 998


@pytest.mark.parametrize("from_addr", BRANDS)
@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("html", [False, True])
@pytest.mark.parametrize(
    "subject",
    [
        "Printer is on fire",
        "Не работает оплата счёта",
        "Re: a long English subject " + "word " * 20,
        ("Счёт №5 " * 20).strip(),
    ],
)
def test_acknowledgements_read_back_as_the_standard_library_composes_them(
    from_addr: str, language: str, html: bool, subject: str
) -> None:
    rendered = Templates(None).render("ack", language, variables(subject), html=html)
    ours, reference = composed(rendered, from_addr)
    assert_same_mail(ours, reference)
    if not html:  # a lone text part is written byte for byte as the standard library does
        assert ours == reference


@pytest.mark.parametrize(
    "text",
    [
        "",
        "one line\n",
        "Строка по-русски\r\nи вторая\n\n\nс пустыми\n",
        "long line " * 30 + "\n",
        "длинная строка " * 30 + "\n",
        "mixed\rline\x0bends\x0c\n",
        "\n".join(["short"] * 12 + ["long " * 30]) + "\n",
        "\n".join(["коротко"] * 12 + ["длинно " * 30]),
    ],
)
def test_any_text_reads_back_the_same(text: str) -> None:
    ours, reference = composed(Rendered("s", text), BRANDS[2])
    assert_same_mail(ours, reference)
    assert ours == reference


def test_attachments_and_html_keep_their_parts() -> None:
    files = [("счёт.pdf", "application/pdf", b"%PDF-1.4 " * 500), ("a.txt", "text/plain", b"x\n")]
    ours, reference = composed(Rendered("s", "text\n", "<p>text</p>"), BRANDS[1], files)
    assert_same_mail(ours, reference)
