"""The one table that turns an outcome into an exit code (sysexits) and an SMTP reply."""

from __future__ import annotations

from postdesk.config.errors import BadData, ConfigError, TemporaryFailure

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78

_TABLE: tuple[tuple[type[Exception], int, str], ...] = (
    (TemporaryFailure, EX_TEMPFAIL, "451 4.3.0 Temporary failure, please try again later"),
    (ConfigError, EX_CONFIG, "451 4.3.5 Server configuration problem, please try again later"),
    (BadData, EX_DATAERR, "554 5.6.0 Message cannot be processed"),
)


def exit_code(exc: Exception) -> int:
    for kind, code, _reply in _TABLE:
        if isinstance(exc, kind):
            return code
    return EX_SOFTWARE


def smtp_reply(exc: Exception) -> str:
    """Anything unforeseen is temporary: the sender keeps the mail and tries again."""
    for kind, _code, reply in _TABLE:
        if isinstance(exc, kind):
            return reply
    return "451 4.3.0 Internal error, please try again later"
