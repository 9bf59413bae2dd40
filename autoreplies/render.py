"""Templates to mail: Jinja2 renders the words, which go straight into the message's bytes.

Every variable a template uses must be given (StrictUndefined), so a typo in an admin's
override shows up in `postdesk check-config` instead of as a blank in a customer's mail.
Every header value is flattened to one line, because customer text (the subject) flows into
the headers of our replies.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)

from postdesk.config.errors import ConfigError
from postdesk.parsers.header_registry import SMTP
from postdesk.store.outbox import Composed

SHIPPED = Path(__file__).parent / "templates"
LANGUAGES = ("en", "ru")
NAME = re.compile(r"^(?P<name>[a-z0-9_-]+)\.(?P<lang>[a-z]{2})\.txt$")
UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
MAX_REFERENCES = 20

SAMPLE: dict[str, Any] = {
    "ticket": {"number": 42, "subject": "Sample subject", "priority": "normal", "queue": "general"},
    "customer_name": "Ann Customer",
    "response_time": "8 hours",
    "response_by": "Monday, 23 November, 18:00 MSK",
    "response_within": True,
    "closed_days": ["28 November – 29 November"],
    "business_hours": "Mon–Fri 09:00–18:00 (Europe/Moscow)",
    "open_now": True,
    "number": 1,
    "total": 2,
    "final": False,
    "last_answer": "Please restart the printer.",
    "survey": [{"label": "Good", "link": "mailto:support+s1v5xabc@example.com"}],
    "nps": False,
    "resolved": False,
    "channels": [{"name": "Phone", "value": "+1 555 0100"}],
    "links": [{"title": "Reset your password", "url": "https://help.example.com/password"}],
    "support_address": "support@example.com",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


@functools.cache
def compiled_templates() -> FileSystemBytecodeCache:
    """Templates compiled once per installation, not in every process: a pipe delivery would
    compile the acknowledgement again for each message. Jinja2 keeps them in a folder of the
    user's own in the temporary directory, keyed by each template's source."""
    return FileSystemBytecodeCache()


class Templates:
    def __init__(self, *overrides: Path | None) -> None:
        """Each folder given overrides the ones after it; the shipped templates come last."""
        folders = [str(folder) for folder in overrides if folder]
        self.folders = [Path(f) for f in folders] + [SHIPPED]
        self._paths: dict[str, Path | None] = {}
        self.loader = ChoiceLoader([FileSystemLoader(f) for f in [*folders, str(SHIPPED)]])
        self.env = Environment(
            loader=self.loader,
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=True,
            bytecode_cache=compiled_templates(),
        )

    @functools.cached_property
    def _names(self) -> frozenset[str]:
        found = set()
        for folder in self.folders:
            for path in folder.glob("*.txt") if folder.is_dir() else ():
                if match := NAME.match(path.name):
                    found.add(match["name"])
        return frozenset(found)

    def names(self) -> set[str]:
        """Read once: a new or removed template is a change the daemon reloads for (its
        folder is watched), which makes new Templates."""
        return set(self._names)

    def check(self) -> list[str]:
        """Render every template in every language with sample values; ``file:line: message``."""
        problems = []
        for name in sorted(self.names()):
            for language in LANGUAGES:
                for suffix in ("txt", "html"):
                    problem = self._check_one(f"{name}.{language}.{suffix}")
                    if problem:
                        problems.append(problem)
        for name in sorted(self.snippets()):
            for language in LANGUAGES:
                problem = self._check_one(f"snippets/{name}.{language}.txt")
                if problem:
                    problems.append(problem)
        return problems

    def _check_one(self, filename: str) -> str | None:
        try:
            source, path, _ = self.loader.get_source(self.env, filename)
        except TemplateNotFound:
            return None
        try:
            if unknown := _unknown_name(self.env.parse(source, filename, path)):
                return f"{path}:{unknown[1]}: '{unknown[0]}' is undefined"
            text = self.env.get_template(filename).render(SAMPLE)
        except TemplateSyntaxError as exc:
            return f"{exc.filename or filename}:{exc.lineno}: {exc.message}"
        except TemplateError as exc:
            return f"{path}:{_error_line(exc)}: {exc}"
        if NAME.match(filename) and not text.lower().startswith("subject:"):
            return f"{path}:1: the first line must be 'Subject: ...'"
        return None

    def render(
        self, name: str, language: str, variables: Mapping[str, Any], *, html: bool = False
    ) -> Rendered:
        language = language if self._exists(f"{name}.{language}.txt") else "en"
        if not self._exists(f"{name}.{language}.txt"):
            raise ConfigError(
                f"no template {name!r} (looked in {', '.join(map(str, self.folders))})"
            )
        first, _, body = (
            self.env.get_template(f"{name}.{language}.txt").render(variables).partition("\n")
        )
        if not first.lower().startswith("subject:"):
            raise ConfigError(f"template {name}.{language}.txt must start with a Subject: line")
        page = None
        if html and self._exists(f"{name}.{language}.html"):
            page = self.env.get_template(f"{name}.{language}.html").render(variables)
        return Rendered(one_line(first[len("subject:") :]), body.strip("\n") + "\n", page)

    def snippets(self) -> set[str]:
        """Canned answers an agent inserts with ``#reply <name>``."""
        found = set()
        for folder in self.folders:
            for path in (folder / "snippets").glob("*.txt") if folder.is_dir() else ():
                if match := NAME.match(path.name):
                    found.add(match["name"])
        return found

    def snippet(self, name: str, language: str, variables: Mapping[str, Any]) -> str:
        if name not in self.snippets():
            raise ConfigError(
                f"no canned reply {name!r} (known: {', '.join(sorted(self.snippets()))})"
            )
        if not self._exists(f"snippets/{name}.{language}.txt"):
            language = "en"
        return self.env.get_template(f"snippets/{name}.{language}.txt").render(variables).strip()

    def _path(self, filename: str) -> Path | None:
        """Looked up once per file name, as `names`: each acknowledgement asks up to three."""
        if filename not in self._paths:
            found = next((f / filename for f in self.folders if (f / filename).is_file()), None)
            self._paths[filename] = found
        return self._paths[filename]

    def _exists(self, filename: str) -> bool:
        return self._path(filename) is not None


def _unknown_name(tree: nodes.Template) -> tuple[str, int] | None:
    """A variable the sample values lack, with its line, even in a branch they do not take."""
    unknown = meta.find_undeclared_variables(tree) - SAMPLE.keys()
    for node in tree.find_all(nodes.Name):
        if node.name in unknown:
            return node.name, node.lineno
    return None


def _error_line(exc: Exception) -> int:
    """The template line of a render error, from the traceback Jinja2 rewrites."""
    tb = exc.__traceback__
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith((".txt", ".html")):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def one_line(value: str) -> str:
    """A header value that cannot start a new header: controls and line breaks become spaces."""
    return " ".join(UNSAFE.sub(" ", value).split())


def thread_references(references: Sequence[str], in_reply_to: str | None) -> list[str]:
    """References for a reply: each id once, the parent last, trimmed to the thread's root
    and the newest ids as mail clients do, so long threads still group under their root."""
    chain = [*dict.fromkeys(r for r in references if r and r != in_reply_to)]
    chain += [in_reply_to] if in_reply_to else []
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[1 - MAX_REFERENCES :]]
    return chain


UNSTRUCTURED = frozenset({"subject"})


def _field(name: str, value: str) -> bytes:
    """One header field as the standard library writes it under the SMTP policy, without
    building a message around it. Plain ASCII (addresses, ids, dates, English subjects)
    goes in as it is, folded only if long: parsing each value into a header object first
    cost more than the rest of composing. Anything else is encoded as RFC 2047 asks. The
    value has passed ``one_line``, so it cannot start a header of its own either way.

    A non-ASCII subject is encoded here: a customer's subject may hold text that only looks
    like an encoded word (one that could not be decoded is kept as it was), which the
    standard library's folding cannot encode."""
    stored: Any = value
    if value.isascii():
        if len(name) + len(value) + 2 <= LINE_LENGTH:  # what the policy writes unfolded
            return f"{name}: {value}\r\n".encode("ascii")
    elif name.lower() in UNSTRUCTURED:
        stored = Header(value, "utf-8", header_name=name).encode()
    else:
        stored = SMTP.header_store_parse(name, value)[1]
    return SMTP.fold_binary(name, stored)


LINE_LENGTH = 78
"""The SMTP policy's ``max_line_length``: longer lines get a transfer encoding."""
TEXT_PART = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: %s\r\n'


LINE_BREAK = re.compile(r"\r\n|\r|\n")
BASE64_CHUNK = LINE_LENGTH // 4 * 3


def _text_part(text: str) -> bytes:
    """A lone UTF-8 text part as ``EmailMessage.set_content(text, charset="utf-8")`` writes
    it under the SMTP policy, without building the message: 7bit or 8bit while every line
    fits, else quoted-printable or base64, whichever its first ten lines make shorter."""
    lines = text.encode("utf-8").splitlines()
    if max(map(len, lines), default=0) <= LINE_LENGTH:
        cte = b"7bit" if text.isascii() else b"8bit"
        return TEXT_PART % cte + b"MIME-Version: 1.0\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    crlf_body = b"\r\n".join(lines) + b"\r\n"
    sniff = b"\r\n".join(lines[:10]) + b"\r\n"
    sniffed = quoprimime.body_encode(sniff.decode("latin-1"), LINE_LENGTH)
    if len(sniffed) > len(binascii.b2a_base64(sniff)):
        cte, payload = (
            b"base64",
            "".join(
                binascii.b2a_base64(crlf_body[i : i + BASE64_CHUNK]).decode("ascii")
                for i in range(0, len(crlf_body), BASE64_CHUNK)
            ),
        )
    elif len(lines) <= 10:
        cte, payload = b"quoted-printable", sniffed
    else:
        body = (b"\n".join(lines) + b"\n").decode("latin-1")
        cte, payload = b"quoted-printable", quoprimime.body_encode(body, LINE_LENGTH)
    *complete, last = LINE_BREAK.split(payload)
    written = "".join(f"{line}\r\n" for line in complete) + last
    return TEXT_PART % cte + b"MIME-Version: 1.0\r\n\r\n" + written.encode("ascii")


def _body(rendered: Rendered, attachments: Sequence[tuple[str, str, bytes]]) -> bytes:
    """The MIME headers and body: a lone text part written directly (``_text_part``); with
    an HTML alternative or attachments the standard library builds the parts and their
    boundaries."""
    if rendered.html is None and not attachments:
        return _text_part(rendered.text)
    mail = EmailMessage(policy=SMTP)
    mail.set_content(rendered.text, charset="utf-8")
    if rendered.html is not None:
        mail.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=one_line(filename),
        )
    return mail.as_bytes()


def compose(
    rendered: Rendered,
    *,
    from_addr: str,
    to: str,
    message_id: str,
    date: datetime,
    in_reply_to: str | None,
    references: Sequence[str],
    auto_submitted: str | None,
    loop_marker: str | None,
    extra_headers: Mapping[str, str] | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> Composed:
    """A message that threads under the mail it answers.

    Automatic mail (``auto_submitted`` given) is marked as RFC 3834 asks and carries our loop
    marker; an agent's relayed reply is human mail and carries neither, so that the other
    side (even another help desk) treats it as a person's answer.
    """
    fields = {"From": from_addr, "To": to}
    if cc:
        fields["Cc"] = ", ".join(one_line(a) for a in cc)
    fields["Subject"] = rendered.subject
    fields["Date"] = format_datetime(date)
    fields["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        fields["In-Reply-To"] = f"<{in_reply_to}>"
    if chain := thread_references(references, in_reply_to):
        fields["References"] = " ".join(f"<{one_line(r)}>" for r in chain)
    if auto_submitted:
        fields["Auto-Submitted"] = auto_submitted
    fields["X-Auto-Response-Suppress"] = "All"
    if loop_marker:
        fields["X-Postdesk-Loop"] = loop_marker
    fields.update(extra_headers or {})
    head = b"".join(_field(name, one_line(value)) for name, value in fields.items())
    return Composed(
        head + _body(rendered, attachments),
        sender=parseaddr(one_line(from_addr))[1],
        message_id=one_line(message_id),
    )
