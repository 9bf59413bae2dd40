"""Raw bytes to decoded fields: headers, addresses, text, HTML and attachments.

mail-parser builds the message tree and reports MIME defects; the fields are then read from
that tree here, because mail-parser decodes text with ``errors="ignore"`` (silently losing
Russian 8-bit mail) and keeps attachments in memory as base64. When mail-parser itself fails,
the standard library parser takes over, so a message is never lost to a parser bug. Long
base64 attachments of a large message are set aside before parsing and streamed to the blob
store (``parsers.large``).
"""

from __future__ import annotations

import binascii
import email
import email.quoprimime
import hashlib
import logging
import mimetypes
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

import mailparser

from postdesk.parsers import large
from postdesk.parsers.charsets import decode
from postdesk.parsers.header_registry import DEFAULT
from postdesk.parsers.model import Attachment, StoreBlob

log = logging.getLogger("postdesk.parsers")

MAX_DEPTH = 30
MAX_PARTS = 500
MAX_HTML_CHARS = 2_000_000
MAX_HEADER_CHARS = 998 * 4
MAX_FIELD_CHARS = 32 * 1024
"""Characters of one header field read at most, cut before mail-parser or the standard
library parse it (their time and memory grow with the field, the strict address parser's
with its square: 10,000 encoded-word names in a Cc took 3.7 GB). An encoded word spends up
to about six characters on one it decodes to, so a cut field still fills MAX_HEADER_CHARS."""
MAX_ADDRESSES = 100
"""Addresses read from one field: only the first 20 recipients ever become participants."""
HEADER_END = re.compile(rb"\r?\n\r?\n")
FIELD = re.compile(rb"(?m)^[^ \t\r\n][^\r\n]*+(?:\r?\n[ \t][^\r\n]*+)*+")
"""One header field with its folded continuation lines."""
ADDRESS_SEPARATOR = re.compile(r'"(?:[^"\\]|\\.)*+"|,')
"""A comma between addresses; a quoted display name is skipped whole, commas and all."""
CONTAINERS = ("message/rfc822", "message/global", "message/delivery-status", "text/rfc822-headers")
BODY_TYPES = ("text/plain", "text/html")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
SPACES = re.compile(r"\s+")
LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\r?\n)+")
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
SURROGATES = re.compile("[\udc80-\udcff]")
"""Undecodable bytes, as an encoded word in an unknown charset leaves them: never an address."""
ATOM = r"[A-Za-z0-9_%+=-]+"
UTF8_WORD = (
    r"=\?(?i:utf-8)\?(?:[bB]\?(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
    r"|[qQ]\?[A-Za-z0-9!*+/_-]*(?:=[0-9A-F]{2}[A-Za-z0-9!*+/_-]*)*)\?="
)
"""An RFC 2047 encoded word in UTF-8, as mail clients write a display name in any other
script than Latin (half of the desk's customers)."""
ADDR_SPEC = rf"(?P<address>{ATOM}(?:\.{ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
SIMPLE_ADDRESS = re.compile(rf"(?:(?P<name>[A-Za-z0-9_' -]*?)\s*<)?{ADDR_SPEC}(?(name)>)")
"""One address, bare or after a plain name: most fields are this, and the strict parser,
which reads them the same (a test holds it to that), costs a hundred times more."""
PLAIN_WORD = r"[A-Za-z0-9_'-]+"
ENCODED_NAME_ADDRESS = re.compile(
    rf"(?P<name>(?:{PLAIN_WORD} )*{UTF8_WORD}(?: {PLAIN_WORD})*) <{ADDR_SPEC}>"
)
"""One address after a name of one UTF-8 encoded word among plain ones: decoded, the name
reads as the strict parser reads it (a test holds it to that). Two encoded words side by
side are left to that parser, which keeps the space between them that RFC 2047 drops."""


@dataclass
class Parsed:
    message: Message
    """The tree; an attachment streamed from a large message keeps a placeholder payload."""
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def read(raw: bytes, store_blob: StoreBlob | None, max_attachment: int) -> Parsed:
    """The tree and decoded fields, the same whether or not long runs were set aside: a run
    whose placeholder lands anywhere but in an attachment that only ``_attachment`` reads
    goes back into the message, which is parsed again."""
    raw, cuts = _cut_fields(_normalise(raw))
    runs = large.runs(raw)
    while True:
        text, marks = large.set_aside(raw, runs)
        parsed, kept_encoded = _parse(text)
        streamed = _streamed(parsed.message, kept_encoded, marks)
        kept = set(streamed.values())
        if len(kept) == len(runs):
            break
        runs = [run for run in runs if run in kept]
    parsed.defects.extend(cuts)
    decoded = {part: (run.size, large.decode(raw, run)) for part, run in streamed.items()}
    _read_body(parsed, store_blob, max_attachment, decoded)
    return parsed


def _parse(raw: bytes) -> tuple[Parsed, list[object]]:
    """The tree with mail-parser's defects, and the payloads it kept as base64 attachments
    (it decoded none of those)."""
    try:
        parser = mailparser.MailParser.from_bytes(raw)
        parsed = Parsed(parser.message)
        parsed.defects.extend(sorted(parser.defects_categories))
    except Exception as exc:
        parsed = Parsed(email.message_from_bytes(raw))
        parsed.defects.append(f"mail-parser failed ({exc!r}); read with the standard parser")
        return parsed, []
    return parsed, [a["payload"] for a in parser.attachments]


def _streamed(
    message: Message, kept_encoded: list[object], marks: dict[str, large.Run]
) -> dict[Message, large.Run]:
    """Parts that are exactly one placeholder and that nothing but ``_attachment`` reads:
    base64, neither body text nor a container, and left encoded by mail-parser."""
    found: dict[Message, large.Run] = {}
    if not marks:
        return found
    for part in _walk(message, []):
        ctype = part.get_content_type()
        if (
            ctype in BODY_TYPES
            or ctype in CONTAINERS
            or ctype.startswith("multipart/")
            or part.is_multipart()
            or str(part.get("content-transfer-encoding", "")).lower() != "base64"
        ):
            continue
        try:
            payload = part.get_payload()
        except (LookupError, UnicodeError):
            continue
        run = marks.get(payload.strip("\r\n")) if isinstance(payload, str) else None
        if run is not None and any(kept is payload for kept in kept_encoded):
            found[part] = run
    return found


def _normalise(raw: bytes) -> bytes:
    """A UTF-8 BOM, blank lines before the first header and classic Mac CR-only line ends
    each hide every header from the parser; all three are seen in real mail."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    head = raw[:4096]
    if b"\r" in head and b"\n" not in head:
        raw = raw.replace(b"\r", b"\n")
    return LEADING_BLANK_LINES.sub(b"", raw, count=1)


def _cut_fields(raw: bytes) -> tuple[bytes, list[str]]:
    """The message with each header field longer than MAX_FIELD_CHARS cut at its last fold
    within the limit, and a defect for each cut; in one linear scan of the header block."""
    end = HEADER_END.search(raw)
    head = raw[: end.start() if end else len(raw)]
    if len(head) <= MAX_FIELD_CHARS:
        return raw, []
    pieces: list[bytes] = []
    cuts: list[str] = []
    last = 0
    for match in FIELD.finditer(head):
        start, stop = match.span()
        if stop - start <= MAX_FIELD_CHARS:
            continue
        fold = head.rfind(b"\n", start, start + MAX_FIELD_CHARS)
        cut = fold if fold > start else start + MAX_FIELD_CHARS
        cut -= head[cut - 1 : cut] == b"\r"
        name = head[start : head.find(b":", start, stop)].decode("ascii", "replace").strip()
        cuts.append(
            f"{name or 'header'} field of {stop - start} bytes cut to {cut - start} "
            "before parsing (the raw message keeps it whole)"
        )
        pieces += (raw[last:cut],)
        last = stop
    pieces.append(raw[last:])
    return b"".join(pieces), cuts


def header(message: Message, name: str) -> str:
    """The first field of that name as clean text: encoded words and raw 8-bit decoded."""
    values = raw_values(message, name)
    return header_text(values[0]) if values else ""


def raw_values(message: Message, name: str) -> list[str]:
    """Field values as received: ``get()`` hides raw 8-bit bytes behind an unknown-8bit Header."""
    name = name.lower()
    return [str(v) for k, v in message.raw_items() if k.lower() == name]


def header_text(value: object, defects: list[str] | None = None) -> str:
    """Clean text of a field; an encoded word that cannot be decoded stays as it is, and
    ``defects`` (when given) is told so."""
    text = _plain(value)
    if len(text) > MAX_FIELD_CHARS:
        cut = text.rfind(" ", 0, MAX_FIELD_CHARS)
        text = text[: cut if cut > 0 else MAX_FIELD_CHARS]
    if "=?" in text:
        text = _decode_words(text, [] if defects is None else defects)
    return SPACES.sub(" ", CONTROL.sub(" ", text)).strip()[:MAX_HEADER_CHARS]


def _plain(value: object) -> str:
    """The field as text with raw 8-bit decoded, encoded words still encoded."""
    text = value if isinstance(value, str) else str(value)
    if SURROGATES.search(text):
        text, _ = decode(text.encode("ascii", "surrogateescape"))
    return SPACES.sub(" ", CONTROL.sub(" ", text)).strip()


def _decode_words(text: str, defects: list[str]) -> str:
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        pass
    # One bad word (base64 of an impossible length, an unknown charset) fails the whole
    # field in the standard library: decode word by word and keep the bad ones literally.
    parts: list[str] = []
    last, decoded_before = 0, False
    for match in ENCODED_WORD.finditer(text):
        word = _decode_word(match, defects)
        between = text[last : match.start()]
        if between.strip() or not (decoded_before and word is not None):
            parts.append(between)  # blanks between two decoded words are dropped (RFC 2047)
        parts.append(match.group(0) if word is None else word)
        last, decoded_before = match.end(), word is not None
    parts.append(text[last:])
    return "".join(parts)


def _decode_word(word: re.Match[str], defects: list[str]) -> str | None:
    """The word's text; None, with a defect noted, when its payload cannot be decoded."""
    charset, encoding, payload = word.groups()
    try:
        if encoding in "bB":
            data = binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        else:
            data = email.quoprimime.header_decode(payload).encode("latin-1")
    except (binascii.Error, ValueError, UnicodeError):
        defects.append(f"undecodable encoded word kept as it is: {word.group(0)[:80]}")
        return None
    decoded, note = decode(data, charset.partition("*")[0])
    if note:
        defects.append(f"encoded word: {note}")
    return decoded


def addresses(message: Message, name: str, defects: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs; entries without an ``@`` are dropped.

    The standard library's RFC 5322 parser reads the field first, decoding encoded words
    only inside display names as RFC 2047 requires: a name that decodes to
    ``Ann\\r\\nBcc: victim@example.net`` stays a name. The lenient parser serves only
    where the strict one gives up. A field too long for either is cut first, and the cut
    is added to ``defects``.
    """
    result = []
    for value in raw_values(message, name):
        plain = _bounded(name, _plain(value), defects)
        simple = SIMPLE_ADDRESS.fullmatch(plain) or ENCODED_NAME_ADDRESS.fullmatch(plain)
        pairs = (
            [(simple["name"] or "", simple["address"])] if simple else parse_addresses(name, plain)
        )
        for display, address in pairs:
            address = address.strip().strip("<>").lower()
            if (
                "@" in address
                and " " not in address
                and len(address) <= 320
                and "=?" not in address
                and address.isprintable()
                and not SURROGATES.search(address)
            ):
                result.append((header_text(display), address))
    return result


def _bounded(name: str, plain: str, defects: list[str]) -> str:
    """The first MAX_ADDRESSES addresses of the field, within MAX_FIELD_CHARS, cut
    at a comma between two of them; found in one linear scan, before any parser runs."""
    if len(plain) <= MAX_FIELD_CHARS and plain.count(",") < MAX_ADDRESSES:
        return plain
    last, commas = 0, 0
    for match in ADDRESS_SEPARATOR.finditer(plain, 0, MAX_FIELD_CHARS):
        if match.group() == ",":
            last, commas = match.start(), commas + 1
            if commas == MAX_ADDRESSES:
                break
    else:
        if len(plain) <= MAX_FIELD_CHARS:
            return plain  # the commas were inside quoted names
        last = last or MAX_FIELD_CHARS
    defects.append(
        f"{name} field of {len(plain)} characters: only its first {max(commas, 1)} "
        "addresses read (the raw message keeps them all)"
    )
    return plain[:last]


def parse_addresses(name: str, plain: str) -> list[tuple[str, str]]:
    """The field read by the strict parser, else the lenient one, else nothing."""
    try:
        parsed = DEFAULT.header_factory(name, plain)
        return [(a.display_name, a.addr_spec) for a in parsed.addresses]
    except Exception:
        try:
            return getaddresses([plain])
        except (RecursionError, ValueError):
            return []


def date(message: Message) -> datetime | None:
    value = header(message, "date")
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def headers(message: Message, defects: list[str] | None = None) -> dict[str, str]:
    """First field of each name, decoded; what could not be decoded is told to ``defects``."""
    found: dict[str, str] = {}
    for name, value in message.raw_items():
        key = name.strip().lower()
        if key not in found:
            noted: list[str] = []
            found[key] = header_text(value, noted)
            if defects is not None:
                defects.extend(f"{name.strip()}: {note}" for note in noted)
    return found


def _walk(message: Message, defects: list[str]) -> Iterator[Message]:
    """Leaves and enclosed messages, without recursion: a nesting attack cannot overflow."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    count = 0
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            defects.append(f"more than {MAX_PARTS} MIME parts; the rest kept only raw")
            return
        if part.get_content_type() in CONTAINERS or not part.is_multipart():
            yield part
            continue
        if depth >= MAX_DEPTH:
            defects.append(f"MIME nesting deeper than {MAX_DEPTH}; kept only raw")
            continue
        children = part.get_payload()
        if isinstance(children, list):
            stack.extend(
                (child, depth + 1) for child in reversed(children) if isinstance(child, Message)
            )


def _read_body(
    parsed: Parsed,
    store_blob: StoreBlob | None,
    limit: int,
    decoded: dict[Message, tuple[int, Iterator[bytes]]],
) -> None:
    plain: list[str] = []
    html: list[str] = []
    for part in _walk(parsed.message, parsed.defects):
        ctype = part.get_content_type()
        if ctype.startswith("multipart/"):
            parsed.defects.append(f"{ctype} without parts, read as text")
            ctype = "text/plain"
        disposition = (part.get_content_disposition() or "").lower()
        named = bool(part.get_filename())
        if ctype in BODY_TYPES and disposition != "attachment" and not named:
            text = _text(part, parsed)
            (plain if ctype == "text/plain" else html).append(text)
        else:
            parsed.attachments.append(
                _attachment(part, parsed, store_blob, limit, decoded.get(part))
            )
    parsed.html = "\n".join(html) or None
    parsed.text = "\n\n".join(t.strip("\n") for t in plain if t.strip())
    if not parsed.text and parsed.html:
        parsed.text = html_to_text(parsed.html)


def _payload(part: Message) -> bytes:
    if part.is_multipart() or part.get_content_type() in CONTAINERS:
        try:
            return part.as_bytes() if part.is_multipart() else _raw_payload(part)
        except (ValueError, LookupError, UnicodeError, TypeError):
            return str(part).encode("utf-8", "surrogateescape")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def as_bytes(message: Message) -> bytes:
    """The message as bytes again, for a message enclosed in another to be read on its own."""
    try:
        return message.as_bytes()
    except (ValueError, LookupError, UnicodeError, TypeError):
        return str(message).encode("utf-8", "surrogateescape")


def _raw_payload(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):
        return b"".join(p.as_bytes() for p in payload if isinstance(p, Message))
    return str(payload).encode("utf-8", "surrogateescape")


def _text(part: Message, parsed: Parsed) -> str:
    text, note = decode(_payload(part), part.get_content_charset())
    if note:
        parsed.defects.append(note)
    return text.replace("\r\n", "\n")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body; only the first 2 million characters of a huge one.
    inscriptis (and lxml behind it) is imported by the first mail that needs it."""
    from inscriptis import get_text

    try:
        return str(get_text(html[:MAX_HTML_CHARS])).strip()
    except Exception as exc:
        log.warning("HTML conversion failed", extra={"error": repr(exc)})
        return re.sub(r"<[^>]*>", " ", html[:MAX_HTML_CHARS]).strip()


def _attachment(
    part: Message,
    parsed: Parsed,
    store_blob: StoreBlob | None,
    limit: int,
    decoded: tuple[int, Iterator[bytes]] | None,
) -> Attachment:
    """``decoded`` is the size and chunks of an attachment streamed from a large message."""
    ctype = part.get_content_type()[:255]
    content: bytes | Iterator[bytes]
    if decoded is None:
        content = _payload(part)
        size = len(content)
    else:
        size, content = decoded
    name = safe_filename(header_text(part.get_filename() or ""), ctype, len(parsed.attachments))
    stored = store_blob is not None and size <= limit
    digest = _digest(content, store_blob if stored else None)
    if store_blob is not None and not stored:
        parsed.defects.append(
            f"attachment {name!r} ({size} bytes) is over the limit of "
            f"{limit} bytes: recorded, not stored (the raw message keeps it)"
        )
    inline = (part.get_content_disposition() or "") == "inline" or bool(part.get("content-id"))
    return Attachment(name, ctype, size, digest, inline=inline, stored=stored)


def _digest(content: bytes | Iterator[bytes], store_blob: StoreBlob | None) -> str:
    """The sha256 of the content, handed to ``store_blob`` on the way: chunks are read once."""
    digest = hashlib.sha256()
    if isinstance(content, bytes):
        digest.update(content)
        if store_blob is not None:
            store_blob(content)
        return digest.hexdigest()
    chunks = _hashing(content, digest.update)
    if store_blob is not None:
        store_blob(chunks)
    for _ in chunks:  # whatever the store did not read, all of it when there is no store
        pass
    return digest.hexdigest()


def _hashing(chunks: Iterator[bytes], update: Callable[[bytes], None]) -> Iterator[bytes]:
    for chunk in chunks:
        update(chunk)
        yield chunk


RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)")
"""Device names Windows opens instead of a file, whatever the extension."""


def safe_filename(name: str, content_type: str, index: int) -> str:
    """A name safe to show and to save: no path, no control or bidi characters, no Windows
    device name, never empty."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = CONTROL.sub("", name).strip(" .")
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        if content_type in CONTAINERS:
            extension = ".eml"
        name = f"attachment-{index + 1}{extension}"
    if RESERVED.match(name):
        name = f"_{name}"
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = f"{stem[:190]}.{extension[:8]}" if dot and len(extension) <= 8 else name[:200]
    return name
