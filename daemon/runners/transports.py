"""Where delivered mail goes: an SMTP relay or a Maildir.

Two kinds of failure are kept apart. A fault of the relay itself (no connection, TLS,
authentication refused, any 4xx, a disk that cannot take a file) says nothing about the
mail being sent: it is a `RelayFault`, and all delivery pauses. Only a permanent answer
about this mail's recipients or content (5xx, except 552) is a `DeliveryError` that fails
this one mail; 552 (mailbox full) is temporary for this mail alone.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import smtplib
import ssl
from pathlib import Path
from typing import Any, Protocol

from postdesk.config.errors import ConfigError
from postdesk.config.loader import read_secret
from postdesk.config.schema import Settings, SmtpRelay
from postdesk.store.outbox import Queued

log = logging.getLogger("postdesk.outbox")


class RelayFault(Exception):
    """No mail can go now (relay down or refusing us, disk full): pause, never fail a mail."""


class DeliveryError(Exception):
    """The relay answered about this mail: permanent fails it, temporary retries it."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    name: str
    """The key of this transport's pause in the database."""
    claim: int
    """Rows claimed at a time: as many as surely go out well within the lease."""

    def send(self, sender: str, mail: Queued) -> str:
        """Deliver; returns what the relay refused of a partly accepted mail ("" if none)."""
        ...

    def settle(self) -> None:
        """Make what `send` took since the last call durable, before those rows count as sent."""
        ...

    def close(self) -> None: ...


def syncfs(fd: int) -> None:
    """Every file written on ``fd``'s file system durable, and a write-back error of any
    of them raised (Linux 5.8 and later): syncfs(2), which the os module lacks."""
    import ctypes  # only a Maildir run needs it

    if _libc().syncfs(fd) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@functools.cache
def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def maildir_name(mail: Queued) -> str:
    """The file a row becomes, the same on every try: a second try writes it again in its
    place (or leaves it, once a reader took it), never a second file."""
    digest = hashlib.sha256(mail.message_id.encode("utf-8", "replace")).hexdigest()[:16]
    return f"postdesk-outbox-{mail.row_id}-{digest}"


class MaildirTransport:
    """For a single machine and for tests: each mail becomes a file in ``new/``, named after
    its outbox row, so a crash between the write and the mark creates no second file. The
    files of a run are made durable together (`settle`: one syncfs of the folder's file
    system, where a fsync of each file and of the folder cost a journal commit a mail),
    before their rows are marked sent."""

    name = "maildir"
    claim = 50

    def __init__(self, path: Path) -> None:
        self.root = path
        self._read_names: set[str] | None = None

    def send(self, sender: str, mail: Queued) -> str:
        name = maildir_name(mail)
        temporary = self.root / "tmp" / name
        try:
            if name in self._read():
                log.info("maildir file already read", extra={"outbox": mail.row_id})
                return ""
            # written again if in new/: a power cut before settle may have left it empty
            with open(temporary, "wb") as fh:
                fh.write(mail.content)
            os.replace(temporary, self.root / "new" / name)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise RelayFault(f"maildir {self.root}: {exc}") from exc
        return ""

    def _read(self) -> set[str]:
        """Names of the files a reader has moved to ``cur/`` (flags after a colon), listed
        once a run, not once a mail; ``new/``, which nobody may ever read, is asked by name."""
        if self._read_names is None:
            for sub in ("tmp", "new", "cur"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self._read_names = {e.name.split(":")[0] for e in os.scandir(self.root / "cur")}
        return self._read_names

    def settle(self) -> None:
        try:
            directory = os.open(self.root / "new", os.O_RDONLY)
            try:
                syncfs(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise RelayFault(f"maildir {self.root}: {exc}") from exc

    def close(self) -> None:
        self._read_names = None


class SmtpTransport:
    """One connection per delivery run, opened on first use; one row claimed at a time, as
    a relay may take its whole timeout over each."""

    claim = 1

    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay
        self.name = _smtp_key(relay)
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        relay = self.relay
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if relay.security == "tls":
            conn = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            conn = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
        try:
            if relay.security == "starttls":
                conn.starttls(context=context)
            if relay.username:
                conn.login(relay.username, read_secret(relay, "outgoing.smtp") or "")
        except BaseException:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.close()
            raise
        return conn

    def send(self, sender: str, mail: Queued) -> str:
        try:
            if self._conn is None:
                self._conn = self._connect()
            refused = self._conn.sendmail(sender, mail.recipients, mail.content)
        except ConfigError as exc:  # the relay's secret is missing: no mail can go
            raise RelayFault(str(exc)) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            answer = f"all recipients refused: {_answers(exc.recipients)}"
            if all(map(permanent, codes)):
                raise DeliveryError(answer, permanent=True) from exc
            if all(code == 552 or permanent(code) for code in codes):
                raise DeliveryError(answer, permanent=False) from exc
            self.close()
            raise RelayFault(answer) from exc
        except smtplib.SMTPDataError as exc:
            answer = f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            if exc.smtp_code == 552 or permanent(exc.smtp_code):
                raise DeliveryError(answer, permanent=permanent(exc.smtp_code)) from exc
            self.close()
            raise RelayFault(answer) from exc
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise RelayFault(
                f"authentication refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise RelayFault(f"relay answered {exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise RelayFault(f"relay unreachable: {exc}") from exc
        except BaseException:
            self.close()  # mid-command: the session's state is unknown
            raise
        return _answers(refused) if refused else ""

    def settle(self) -> None:
        """The relay's 250 was its promise: nothing more to wait for."""

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None


def permanent(code: int) -> bool:
    return code >= 500 and code != 552


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer


def _answers(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{to}: {code} {_text(text)}" for to, (code, text) in refused.items())


def make_transport(settings: Settings) -> Transport:
    out = settings.outgoing
    if out.smtp is not None:
        return SmtpTransport(out.smtp)
    return MaildirTransport(out.maildir or settings.data_dir / "sent")


def transport_name(settings: Settings) -> str:
    """The pause key of the configured transport, without opening it (for status)."""
    relay = settings.outgoing.smtp
    return _smtp_key(relay) if relay else MaildirTransport.name


def _smtp_key(relay: SmtpRelay) -> str:
    return f"smtp:{relay.host}:{relay.port}"
