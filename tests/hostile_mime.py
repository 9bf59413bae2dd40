"""Hypothesis strategies for hostile mail: MIME trees built by hand as bytes, so that they
can be as broken as real attacks are (wrong boundaries, unknown charsets and encodings,
injected line breaks, path names, bidi and NUL characters, truncation anywhere)."""

from __future__ import annotations

from hypothesis import strategies as st

ATTACKS = [
    "\r\nBcc: victim@example.net",
    "\nX-Injected: 1",
    "=?utf-8?q?Help=0D=0ABcc=3A_victim@example.net?=",
    "=?utf-8?b?Qm9iDQpCY2M6IHZpY3RpbUBleGFtcGxlLm5ldA==?=",
    "=?x-unknown?q?=E9?=",
    "=?utf-8?b?broken base64?=",
    "../../../../tmp/evil.sh",
    "..\\..\\win.ini",
    "a\x00b.txt",
    "\u202egnp.exe",
    "<script>alert(1)</script>",
    "Ёжик в тумане",
    "\udcff\udcfe",
]
INJECTED = ("bcc", "x-injected")

pieces = st.one_of(st.sampled_from(ATTACKS), st.text(max_size=30))
hostile_text = st.lists(pieces, max_size=4).map("".join)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@st.composite
def parts(draw: st.DrawFn, depth: int = 0) -> bytes:
    """One MIME entity (headers, blank line, body), multipart up to four levels deep."""
    if depth < 4 and draw(st.booleans()):
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
        boundary = draw(st.sampled_from(["b", "b", "=_x", "", "--", "a" * 80]))
        children = draw(st.lists(parts(depth + 1), max_size=3))
        body = b"".join(b"--" + _bytes(boundary) + b"\r\n" + c + b"\r\n" for c in children)
        if draw(st.booleans()):
            body += b"--" + _bytes(boundary) + b"--\r\n"
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'
        return _bytes(head) + b"\r\n" + body
    ctype = draw(
        st.sampled_from(["text/plain", "text/html", "application/pdf", "message/rfc822", "x/y"])
    )
    charset = draw(st.sampled_from(["utf-8", "koi8-r", "x-unknown-8", "", "utf-7"]))
    encoding = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uue", ""]))
    name = draw(hostile_text)
    head = f'Content-Type: {ctype}; charset="{charset}"; name="{name}"\r\n'
    head += f"Content-Transfer-Encoding: {encoding}\r\n"
    if draw(st.booleans()):
        head += f'Content-Disposition: attachment; filename="{name}"\r\n'
    return _bytes(head) + b"\r\n" + _bytes(draw(hostile_text)) + b"\r\n"


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A whole message from a hostile sender to support, maybe cut off anywhere."""
    name, subject = draw(hostile_text), draw(hostile_text)
    sender = f"attacker{draw(st.integers(0, 10**6))}@example.org"
    head = f"From: {name} <{sender}>\r\nTo: support@example.com\r\n"
    head += f"Subject: {subject}\r\nMessage-ID: <{draw(st.uuids())}@example.org>\r\n"
    head += "MIME-Version: 1.0\r\n"
    raw = _bytes(head) + draw(parts())
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(min_value=1, max_value=len(raw)))]
    return raw
