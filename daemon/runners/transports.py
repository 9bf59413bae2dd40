"""Where delivered mail goes: an SMTP relay or a Maildir. Temporary and permanent failures
are kept apart: codes of 500 and up (except 552) are permanent."""

from __future__ import annotations

import contextlib
import logging
import mailbox
import smtplib
import ssl
from pathlib import Path
from typing import Protocol

from postdesk.config.loader import read_secret
from postdesk.config.schema import Settings, SmtpRelay

log = logging.getLogger("postdesk.outbox")


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool, unreachable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable
        """No mail can go now (relay down, disk full), not only this one."""


class Transport(Protocol):
    claim: int
    """Rows claimed at a time: as many as surely go out well within the lease."""

    def send(self, sender: str, recipients: list[str], content: bytes) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """For a single machine and for tests: each mail becomes a file in ``new/``."""

    claim = 50

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, create=True)

    def send(self, sender: str, recipients: list[str], content: bytes) -> None:
        try:
            self.maildir.add(content)
        except OSError as exc:
            raise DeliveryError(f"maildir: {exc}", permanent=False, unreachable=True) from exc

    def close(self) -> None:
        return None


class SmtpTransport:
    """One connection per delivery run, opened on first use; one row claimed at a time, as
    a relay may take its whole timeout over each."""

    claim = 1

    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay
        self.password = read_secret(relay, "outgoing.smtp")
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        relay = self.relay
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if relay.security == "tls":
            conn = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            conn = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
            if relay.security == "starttls":
                conn.starttls(context=context)
        if relay.username:
            conn.login(relay.username, self.password or "")
        return conn

    def send(self, sender: str, recipients: list[str], content: bytes) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            refused = self._conn.sendmail(sender, recipients, content)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"all recipients refused: {exc.recipients}", permanent=all(map(permanent, codes))
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(
                f"{exc.smtp_code} {exc.smtp_error!r}", permanent=permanent(exc.smtp_code)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(
                f"relay unreachable: {exc}", permanent=False, unreachable=True
            ) from exc
        if refused:
            log.warning("some recipients refused", extra={"refused": refused})

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None


def permanent(code: int) -> bool:
    return code >= 500 and code != 552


def make_transport(settings: Settings) -> Transport:
    out = settings.outgoing
    if out.smtp is not None:
        return SmtpTransport(out.smtp)
    return MaildirTransport(out.maildir or settings.data_dir / "sent")
