"""Long base64 runs set aside before parsing: the fields must be exactly those of a plain parse.

Each message is just over ``large.LARGE_MESSAGE``, with one run over ``large.LARGE_RUN``;
the expected values come from the standard library reading the same bytes.
"""

from __future__ import annotations

import base64
import email
import hashlib
import random
from email.message import Message
from pathlib import Path

import mailparser
import pytest

from postdesk.parsers import large, mime
from postdesk.store.blobs import BlobStore

SIZE = large.LARGE_MESSAGE * 3 // 4 + 3000
"""Decoded bytes of the big attachment: its base64 alone is over LARGE_MESSAGE."""
TEXT = ("Журнал ошибок: принтер горит.\n" * (SIZE // 40)).encode()
"""Valid UTF-8, where a placeholder decoded as text is not: mail-parser would report it."""
LIMIT = 64 * 1024 * 1024


def data(size: int = SIZE) -> bytes:
    return random.Random(size).randbytes(size)


def b64(content: bytes, width: int = 76) -> bytes:
    text = base64.b64encode(content)
    return b"".join(text[i : i + width] + b"\n" for i in range(0, len(text), width))


def attachment(
    body: bytes, name: str = "big.bin", ctype: str = "application/octet-stream"
) -> bytes:
    headers = f"Content-Type: {ctype}\nContent-Transfer-Encoding: base64\n"
    if name:
        headers += f'Content-Disposition: attachment; filename="{name}"\n'
    return headers.encode() + b"\n" + body


def message(*parts: bytes, nl: bytes = b"\n", boundary: bytes = b"b0") -> bytes:
    """A multipart/mixed message: a short text, then the given parts (headers and body)."""
    raw = (
        b"From: Ann <ann@example.org>\nTo: support@example.com\nSubject: dump\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=" + boundary + b"\n\n"
        b"--" + boundary + b"\nContent-Type: text/plain\n\nThe dump is attached.\n"
    )
    raw += b"".join(b"--" + boundary + b"\n" + part for part in parts)
    return (raw + b"--" + boundary + b"--\n").replace(b"\n", nl)


def part_named(message: Message, name: str) -> Message:
    return next(p for p in message.walk() if p.get_filename() == name)


def stdlib_decoded(raw: bytes, name: str = "big.bin") -> bytes:
    payload = part_named(email.message_from_bytes(raw), name).get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


@pytest.mark.parametrize("nl", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("width", [76, 75, 57, 42])
@pytest.mark.parametrize("size", [SIZE, SIZE + 1, SIZE + 2], ids=["no-pad", "pad-2", "pad-1"])
def test_streamed_attachment_is_the_standard_library_decoding(
    tmp_path: Path, nl: bytes, width: int, size: int
) -> None:
    content = data(size)
    raw = message(attachment(b64(content, width)), nl=nl)
    store = BlobStore(tmp_path)
    parsed = mime.read(raw, store.put, LIMIT)
    assert len(part_named(parsed.message, "big.bin").get_payload()) < 100  # set aside
    (found,) = parsed.attachments
    expected = stdlib_decoded(raw)
    assert expected == content
    assert found.size == len(expected) and found.stored
    assert found.sha256 == hashlib.sha256(expected).hexdigest()
    assert store.get(found.sha256) == expected
    assert parsed.text == "The dump is attached."


def test_small_messages_are_not_searched() -> None:
    raw = message(attachment(b64(data(large.LARGE_RUN))))
    assert len(raw) <= large.LARGE_MESSAGE
    assert large.runs(raw) == []


def test_large_base64_text_is_read_as_text() -> None:
    raw = message(attachment(b64(TEXT), name="", ctype="text/plain; charset=utf-8"))
    assert large.runs(raw)
    parsed = mime.read(raw, None, LIMIT)
    assert parsed.text == "The dump is attached.\n\n" + TEXT.decode().strip("\n")
    assert parsed.attachments == []


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (data(), b"Content-Type: application/octet-stream\n"),
        (TEXT, b"Content-Type: application/octet-stream\n"),
        (
            TEXT,
            b"Content-Type: text/plain; charset=utf-8\n"
            b'Content-Disposition: inline; filename="log.txt"\n',
        ),
    ],
    ids=["unnamed-binary", "unnamed-text", "named-inline-text"],
)
def test_parts_mail_parser_decodes_keep_its_defects(content: bytes, headers: bytes) -> None:
    """mail-parser decodes these as body text too, and reports text it cannot decode."""
    raw = message(headers + b"Content-Transfer-Encoding: base64\n\n" + b64(content))
    parsed = mime.read(raw, None, LIMIT)
    assert parsed.defects == sorted(mailparser.MailParser.from_bytes(raw).defects_categories)
    assert parsed.attachments[0].sha256 == hashlib.sha256(content).hexdigest()


def test_transfer_encoding_the_stdlib_does_not_decode_is_not_streamed() -> None:
    """The stdlib compares the field unstripped: for it ``base64 `` is no encoding at all."""
    body = attachment(b64(data())).replace(b"base64\n", b"base64 \n")
    raw = message(body)
    (found,) = mime.read(raw, None, LIMIT).attachments
    assert found.sha256 == hashlib.sha256(stdlib_decoded(raw)).hexdigest()
    assert found.size > SIZE  # the base64 text itself


def test_forged_placeholder_is_not_substituted(tmp_path: Path) -> None:
    forged = b"PostdeskSetAside" + b"0" * 32 + b"00000000\n"
    raw = message(attachment(forged, name="forged.bin"), attachment(b64(data())))
    store = BlobStore(tmp_path)
    parsed = mime.read(raw, store.put, LIMIT)
    assert [a.filename for a in parsed.attachments] == ["forged.bin", "big.bin"]
    for found in parsed.attachments:
        expected = stdlib_decoded(raw, found.filename)
        assert found.sha256 == hashlib.sha256(expected).hexdigest()
        assert store.get(found.sha256) == expected


def test_over_the_limit_is_recorded_not_stored(tmp_path: Path) -> None:
    raw = message(attachment(b64(data())))
    store = BlobStore(tmp_path)
    parsed = mime.read(raw, store.put, SIZE - 1)
    (found,) = parsed.attachments
    assert not found.stored and found.size == SIZE
    assert found.sha256 == hashlib.sha256(data()).hexdigest()
    assert parsed.defects == [
        f"attachment 'big.bin' ({SIZE} bytes) is over the limit of {SIZE - 1} bytes: "
        "recorded, not stored (the raw message keeps it)"
    ]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "body",
    [
        b64(data(301)) + b64(data()),  # padding before the last line
        b64(data()) + b"A\n",  # one character too many for whole bytes
    ],
    ids=["padding-inside", "one-char-too-many"],
)
def test_runs_the_stdlib_reads_leniently_stay_in_the_message(body: bytes) -> None:
    raw = message(attachment(body))
    assert large.runs(raw) == []
    (found,) = mime.read(raw, None, LIMIT).attachments
    assert found.sha256 == hashlib.sha256(stdlib_decoded(raw)).hexdigest()


def test_attachment_in_an_enclosed_message_is_put_back() -> None:
    enclosed = message(attachment(b64(data())), boundary=b"b1")
    raw = message(b"Content-Type: message/rfc822\n\n" + enclosed)
    assert large.runs(raw)
    (found,) = mime.read(raw, None, LIMIT).attachments
    part = email.message_from_bytes(raw).get_payload()[1]
    assert found.content_type == "message/rfc822"
    assert found.sha256 == hashlib.sha256(mime._payload(part)).hexdigest()
