"""`postdesk ingest -` as a thin client: the piped message handed to the running daemon.

The MTA's pipe starts one process per message, and one that loads the whole of postdesk
spends over half a second on imports. This one reads config.yaml for the socket's path
(PyYAML's C loader, no validation), hands the message to the daemon's local LMTP socket and
keeps cli/ingest.py's exit contract: 0 once the daemon answers 250 (the message is stored),
75 for any other answer to the message. When no daemon takes it before the message is sent
(other arguments than one message on stdin for given recipients, no socket, nobody
listening, no answer in time, a refused recipient), ``hand_over`` returns None and the
command runs in process as before, on the stdin it has not touched.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from postdesk.daemon import handoff, logs
from postdesk.daemon.errors import EX_OK, EX_TEMPFAIL

log = logging.getLogger("postdesk.cli")

ENV_CONFIG = "POSTDESK_CONFIG"
"""config/loader.py's variable, named again: importing the loader would load pydantic."""
DEFAULT_DATA_DIR = "postdesk-data"
DEFAULT_SOCKET = "postdesk.sock"
"""config/schema.py's defaults of `data_dir` and `listen.socket`, for the same reason;
tests/unit/test_thin_ingest.py holds both ends to the same path."""
ENVELOPE_SECONDS = 10.0
"""For the greeting and each envelope command: a daemon that has not answered by then is
taken for none, and the message is ingested in process."""
ANSWER_SECONDS = 600.0
"""For the answer to the message, which may be being stored: past it the MTA retries, and a
message the daemon did store is then recognised as a duplicate."""
SIMPLE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
"""Recipients that RCPT TO carries unchanged; any other is left to the in-process path."""
OPTIONS = {"--config": "config", "--log-level": "log_level", "--recipient": "recipient"}


class Pipe(NamedTuple):
    """What the command line asks for, when it asks for a pipe delivery (not a dataclass:
    importing dataclasses would add 24 M instructions, 7 % of the whole process)."""

    config: str | None
    log_level: str
    recipients: tuple[str, ...]


def pipe_arguments(argv: Sequence[str]) -> Pipe | None:
    """``[--config C] [--log-level L] ingest --recipient A [...] [-]`` in any order argparse
    takes, else None: anything else (a file, an abbreviation) is the full parser's to read."""
    found: dict[str, list[str]] = {"config": [], "log_level": [], "recipient": []}
    words = list(argv)
    seen_ingest = seen_stdin = False
    while words:
        word = words.pop(0)
        name, equals, value = word.partition("=")
        if name in OPTIONS:
            if not equals:
                if not words:
                    return None
                value = words.pop(0)
            found[OPTIONS[name]].append(value)
        elif word == "ingest" and not seen_ingest:
            seen_ingest = True
        elif word == "-" and seen_ingest and not seen_stdin:
            seen_stdin = True
        else:
            return None
    level = (found["log_level"] or ["INFO"])[-1].upper()
    recipients = tuple(found["recipient"])
    if not seen_ingest or level not in logs.LEVELS or not recipients:
        return None
    if not all(SIMPLE_ADDRESS.fullmatch(r) for r in recipients):
        return None
    config = found["config"][-1] if found["config"] else None
    return Pipe(config, level, recipients)


def socket_path(config: str | None) -> Path | None:
    """`Settings.pipe_socket` of the config in force, or None where it cannot be told
    without the full loader (which then reports what is wrong)."""
    chosen = config or os.environ.get(ENV_CONFIG)
    if not chosen:
        return Path(DEFAULT_DATA_DIR) / DEFAULT_SOCKET
    file = Path(chosen)
    try:
        data: Any = yaml.load(file.read_bytes(), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError):
        return None
    data = {} if data is None else data
    listen = (data.get("listen") or {}) if isinstance(data, dict) else None
    if not isinstance(listen, dict):
        return None
    data_dir, path = data.get("data_dir", DEFAULT_DATA_DIR), listen.get("socket", DEFAULT_SOCKET)
    if not isinstance(data_dir, str) or not isinstance(path, str):
        return None
    return file.parent / data_dir / path


def hand_over(argv: Sequence[str]) -> int | None:
    """The exit code once the daemon had the message, None when it is the caller's. No
    error escapes: a traceback's exit status would make Postfix bounce the mail."""
    try:
        pipe = pipe_arguments(argv)
        path = socket_path(pipe.config) if pipe else None
        if pipe is None or path is None or not path.exists():
            return None
        logs.setup(pipe.log_level)
        return _hand_over(path, pipe.recipients)
    except Exception:
        log.exception("unexpected error before the handover; ingesting in process")
        return None


def _hand_over(path: Path, recipients: tuple[str, ...]) -> int | None:
    try:
        client = smtplib.LMTP(str(path.absolute()), timeout=ENVELOPE_SECONDS)
    except smtplib.SMTPConnectError as exc:
        return _refused(exc.smtp_code, exc.smtp_error, path)
    except (OSError, smtplib.SMTPException) as exc:
        log.info("no daemon on the socket; ingesting in process", extra=_why(path, exc))
        return None
    try:
        refusal = _envelope(client, recipients)
        if refusal is None:
            return _deliver(client, sys.stdin.buffer.read(), path)
    except (OSError, smtplib.SMTPException) as exc:
        log.info("the daemon did not answer; ingesting in process", extra=_why(path, exc))
        return None
    finally:
        client.close()
    command, code, text = refusal
    return _refused(code, text, path, command)


def _envelope(client: smtplib.LMTP, recipients: tuple[str, ...]) -> tuple[str, int, bytes] | None:
    """The first command the daemon did not accept, with its answer; None when all were."""
    code, text = client.ehlo()
    if code != 250:
        return "LHLO", code, text
    code, text = client.mail("")
    if code != 250:
        return "MAIL", code, text
    for recipient in recipients:
        code, text = client.rcpt(recipient)
        if code != 250:
            return "RCPT", code, text
    return None


def _deliver(client: smtplib.LMTP, raw: bytes, path: Path) -> int:
    """Once stdin is read the message is the daemon's or the MTA's, never this process's:
    only a 250 means stored; anything else leaves it with the MTA, whose retry the daemon
    recognises if it did store it. Nothing escapes."""
    try:
        assert client.sock is not None
        client.sock.settimeout(ANSWER_SECONDS)
        code, text = client.data(handoff.encode_message(raw))
        if code != 250:
            raise smtplib.SMTPResponseException(code, text)
        done = handoff.read_accepted(text.decode("ascii"))
        print(handoff.outcome_line("-", done["outcome"], done["ticket"], done["reason"]))
    except Exception as exc:
        print(f"postdesk: the daemon did not store the message: {exc}", file=sys.stderr)
        log.error("message left with the MTA for a retry", extra=_why(path, exc))
        return EX_TEMPFAIL
    return EX_OK


def _refused(code: int, text: bytes | str, path: Path, command: str = "greeting") -> int | None:
    """Before the message was sent: a temporary answer leaves it with the MTA, a permanent
    one (a recipient the daemon does not accept, say) leaves it to the in-process path,
    which takes what the pipe says as cli/ingest.py always has."""
    answer = f"{code} {text if isinstance(text, str) else text.decode('utf-8', 'replace')}"
    if 400 <= code < 500:
        print(f"postdesk: the daemon answered {command} with {answer}", file=sys.stderr)
        log.error("message left with the MTA for a retry", extra={"answer": answer})
        return EX_TEMPFAIL
    log.info(
        "the daemon refused the message; ingesting in process",
        extra={"socket": str(path), "command": command, "answer": answer},
    )
    return None


def _why(path: Path, exc: BaseException) -> dict[str, str]:
    return {"socket": str(path), "error": str(exc) or type(exc).__name__}
