"""Every message of the real-world corpus through the parser: what it must and must not be.

The labels come from tests/data/corpus/MANIFEST.tsv. Where postdesk deliberately decides
otherwise the case is listed in DISAGREE with the reason, as a strict xfail: if the code
changes its mind, the test says so.
"""

from __future__ import annotations

import csv
import email
from email.charset import BASE64, QP, Charset

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postdesk.config.errors import BadData
from postdesk.parsers import mime, parse
from postdesk.parsers.model import Kind, ParseContext
from tests.helpers import DATA

CORPUS = DATA / "corpus"
ROWS = list(csv.DictReader((CORPUS / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
MACHINE = {Kind.BOUNCE, Kind.AUTOREPLY, Kind.BULK, Kind.LOOP}
CONTEXT = ParseContext(
    own_addresses=frozenset({"support@example.com"}),
    secret=b"corpus",
    loop_marker="support@example.com",
    store_blob=lambda data: "",
)

NO_HEADERS_SIGNAL = "machine mail with no header that says so; only content filtering would know"
DISAGREE = {
    "bounceparser/bluebottle.eml": "challenge-response request that looks like a plain reply",
    "bounce_email-py/tt_1234241664.eml": NO_HEADERS_SIGNAL,
    "mail-parser/mail_test_10.eml": NO_HEADERS_SIGNAL,
    "php-mime-mail-parser/issue230.eml": NO_HEADERS_SIGNAL,
    "php-mime-mail-parser/m0020.eml": NO_HEADERS_SIGNAL,
    "mimekit/multipart-digest.eml": "a forwarded digest item without list headers",
    "flanker/messages_attached-pdf.eml": "no From field at all: cannot be a ticket",
    "php-mime-mail-parser/m0024.eml": "carries a Mailing-List header: treated as list mail",
    "mimekit/epilogue.eml": "posted to a newsgroup (Newsgroups header): treated as list mail",
}


def _outcome(path: str) -> tuple[str, str]:
    try:
        msg = parse((CORPUS / path).read_bytes(), CONTEXT)
    except BadData as exc:
        return "quarantine", str(exc)
    return str(msg.kind), msg.kind_reason


def _cases(*expected: str) -> list[object]:
    return [
        pytest.param(
            r["path"],
            id=r["path"],
            marks=[pytest.mark.xfail(strict=True, reason=DISAGREE[r["path"]])]
            if r["path"] in DISAGREE
            else [],
        )
        for r in ROWS
        if r["expected"] in expected
    ]


@pytest.mark.parametrize("path", [r["path"] for r in ROWS])
def test_every_message_parses_or_is_refused_with_a_reason(path: str) -> None:
    kind, reason = _outcome(path)
    if kind == "quarantine":
        assert reason
    else:
        assert kind in {str(k) for k in Kind}


@pytest.mark.parametrize("path", _cases("suppress_autoreply", "ignore"))
def test_machine_mail_is_never_a_customer(path: str) -> None:
    kind, reason = _outcome(path)
    assert kind in {*map(str, MACHINE), "quarantine"}, reason


@pytest.mark.parametrize("path", _cases("create_ticket", "append_to_thread"))
def test_human_mail_is_a_customer(path: str) -> None:
    kind, reason = _outcome(path)
    assert kind == Kind.CUSTOMER, reason


@pytest.mark.parametrize(
    "path", [r["path"] for r in ROWS if r["kind"] == "non_mail" and r["path"] not in DISAGREE]
)
def test_what_is_not_mail_is_quarantined(path: str) -> None:
    kind, reason = _outcome(path)
    assert kind == "quarantine", reason


ADDRESS_FIELDS = ("from", "to", "cc", "reply-to", "sender", "delivered-to")


def _address_values() -> list[str]:
    values = []
    for row in ROWS:
        message = email.message_from_bytes((CORPUS / row["path"]).read_bytes())
        for name in ADDRESS_FIELDS:
            values += [mime._plain(v) for v in mime.raw_values(message, name)]
    return values


def _normal(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(" ".join(display.split()), address) for display, address in pairs]


def test_simple_address_shortcut_reads_as_the_strict_parser_does() -> None:
    """The shortcut for plain ``name <address>`` fields must agree with the RFC 5322 parser
    wherever it applies; the corpus must exercise both ways."""
    values = _address_values()
    simple = [v for v in values if mime.SIMPLE_ADDRESS.fullmatch(v)]
    assert len(simple) > 100
    assert len(values) - len(simple) > 50
    for value in simple:
        match = mime.SIMPLE_ADDRESS.fullmatch(value)
        assert match is not None
        shortcut = [(match["name"] or "", match["address"])]
        assert _normal(shortcut) == _normal(mime.parse_addresses("to", value)), value


@given(
    name=st.text(alphabet="ABCabc019_' -", max_size=12),
    local=st.from_regex(r"[A-Za-z0-9_%+=-]{1,5}(\.[A-Za-z0-9_%+=-]{1,5}){0,2}", fullmatch=True),
    domain=st.from_regex(r"[A-Za-z0-9-]{1,6}(\.[A-Za-z0-9-]{1,4}){0,2}", fullmatch=True),
    bracketed=st.booleans(),
)
def test_simple_address_shortcut_agrees_on_generated_fields(
    name: str, local: str, domain: str, bracketed: bool
) -> None:
    value = mime._plain(f"{name} <{local}@{domain}>" if bracketed else f"{local}@{domain}")
    match = mime.SIMPLE_ADDRESS.fullmatch(value)
    if match is not None:
        shortcut = [(match["name"] or "", match["address"])]
        assert _normal(shortcut) == _normal(mime.parse_addresses("to", value)), value


def _decoded(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(mime.header_text(display), address) for display, address in pairs]


def test_encoded_name_shortcut_reads_as_the_strict_parser_does() -> None:
    """Decoded, the name the shortcut for ``=?utf-8?...?= <address>`` finds is the one the
    RFC 5322 parser finds, wherever the shortcut applies in the corpus."""
    values = [v for v in _address_values() if mime.ENCODED_NAME_ADDRESS.fullmatch(v)]
    assert len([v for v in values if "=?" in v]) > 5
    for value in values:
        match = mime.ENCODED_NAME_ADDRESS.fullmatch(value)
        assert match is not None
        shortcut = [(match["name"], match["address"])]
        assert _decoded(shortcut) == _decoded(mime.parse_addresses("to", value)), value


@given(
    name=st.text(max_size=30),
    plain=st.text(alphabet="ABCabc019_'-", min_size=1, max_size=6),
    local=st.from_regex(r"[A-Za-z0-9_%+=-]{1,5}(\.[A-Za-z0-9_%+=-]{1,5}){0,2}", fullmatch=True),
    encoding=st.sampled_from(["b", "q"]),
)
def test_encoded_name_shortcut_agrees_on_generated_fields(
    name: str, plain: str, local: str, encoding: str
) -> None:
    charset = Charset("utf-8")
    charset.header_encoding = BASE64 if encoding == "b" else QP
    words = charset.header_encode(name)
    value = mime._plain(f"{words} {plain} <{local}@example.org>")
    match = mime.ENCODED_NAME_ADDRESS.fullmatch(value)
    if match is not None:
        shortcut = [(match["name"], match["address"])]
        assert _decoded(shortcut) == _decoded(mime.parse_addresses("to", value)), value
