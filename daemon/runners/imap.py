"""IMAP gateway: one blocking imapclient loop per mailbox, each in its own thread.

Exactly once: a message is ingested (committed) before it is moved, flagged or deleted, and
the mailbox's UID cursor moves only after that. A crash in between re-fetches the message;
ingest recognises its bytes as a duplicate and it is filed then. New mail is found by UID
(``UID SEARCH UID last+1:*``), never by \\Seen, which any mail client may change. IDLE wakes
the loop at once where the server offers it; a full poll still runs every ``poll_interval``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from imapclient import SEEN, IMAPClient
from imapclient.exceptions import LoginError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_random_exponential

from postdesk.config.errors import ConfigError, TemporaryFailure
from postdesk.config.loader import read_secret
from postdesk.config.schema import Mailbox, OAuth2
from postdesk.daemon import clock
from postdesk.daemon.app import App
from postdesk.daemon.outgoing.compose import queue_alert
from postdesk.daemon.pipeline.ingest import Delivery, Outcome, ingest_group
from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.pipeline.result import DUPLICATE, QUARANTINED, IngestResult
from postdesk.store import mailboxes

log = logging.getLogger("postdesk.imap")

PROCESSED, QUARANTINE, LEFT = "processed", "quarantine", "left"


class LeaseLost(Exception):
    """Another instance holds the mailbox now: stop touching it."""


@dataclass(frozen=True)
class Timing:
    """Tunables; tests shorten them, production keeps the defaults."""

    lease_ttl: timedelta = timedelta(seconds=90)
    renew_every: float = 30.0
    """Also the longest wait for a lease held by another instance."""
    idle_check: float = 1.0
    """How soon a stop request is noticed while idling."""
    max_backoff: float = 300.0
    auth_backoff: float = 900.0
    """Wrong credentials do not fix themselves: retry rarely, not in a tight loop."""
    timeout: float = 60.0
    chunk: int = 100
    chunk_bytes: int = 20 * 1024 * 1024


def oauth2_token(oauth: OAuth2, what: str) -> str:
    """A fresh access token at every login, from the helper command or the kept file."""
    if oauth.token_command:
        try:
            done = subprocess.run(
                oauth.token_command, shell=True, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired as exc:
            raise ConfigError(f"{what}.token_command: timed out") from exc
        token = done.stdout.strip()
        if done.returncode or not token:
            detail = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise ConfigError(f"{what}.token_command: exit {done.returncode}: {detail}")
        return token
    assert oauth.token_file is not None
    try:
        return oauth.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}.token_file: cannot read {oauth.token_file}: {exc}") from exc


class Poller:
    """Keeps one mailbox drained into tickets while this instance holds its lease."""

    def __init__(
        self,
        app: App,
        mailbox: Mailbox,
        on_queued: Callable[[], None],
        stop: threading.Event,
        holder: str,
        timing: Timing = Timing(),
        ahead: ParseAhead | None = None,
    ) -> None:
        self.app = app
        self.mailbox = mailbox
        self.on_queued = on_queued
        self.stop = stop
        self.holder = holder
        self.timing = timing
        self.source = f"imap:{mailbox.name}"
        self.what = f"mailboxes.{mailbox.name}"
        self._network_wait = wait_random_exponential(multiplier=0.5, max=timing.max_backoff)
        self.ahead = ahead
        """Parses a fetched group while its first messages are written."""
        # What tests and logs watch; `changed` is notified on every update.
        self.changed = threading.Condition()
        self.connections = 0
        self.handled = 0
        self.standby = False
        self.idling = False
        self.retry_in: float | None = None

    # -- the outer loop ------------------------------------------------------------------

    def run(self) -> None:
        """Until stopped: take the lease, keep a session up, back off on every failure."""
        retrying = Retrying(
            sleep=self._pause,
            stop=lambda _: self.stop.is_set(),
            wait=self._backoff,
            retry=retry_if_exception_type(Exception),
            before_sleep=self._failed,
            reraise=True,
        )
        while not self.stop.is_set():
            with suppress(Exception):  # only reached when stopping; each failure was logged
                retrying(self._session)
        with suppress(TemporaryFailure), self.app.db.transaction() as session:
            mailboxes.release_lease(session, self.mailbox.name, self.holder)
        log.info("imap poller stopped", extra={"mailbox": self.mailbox.name})

    def _pause(self, seconds: float) -> None:
        """Wait between attempts, cut short when the poller is stopped."""
        self.stop.wait(seconds)

    def _backoff(self, state: RetryCallState) -> float:
        """Full jitter, exponential up to max_backoff; credentials and config wait long."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, LoginError | ConfigError):
            return self.timing.auth_backoff * random.uniform(1.0, 1.2)
        return float(self._network_wait(state))

    def _failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        retry_in = round(state.next_action.sleep, 1) if state.next_action else None
        fields = {"mailbox": self.mailbox.name, "error": _describe(error), "retry_in": retry_in}
        self._set(retry_in=retry_in)
        if isinstance(error, LoginError | ConfigError):
            log.error("imap login impossible; check the credentials", extra=fields)
            self._alert(
                f"mailbox {self.mailbox.name}: cannot log in",
                f"Mail in {self.mailbox.username}@{self.mailbox.host} is not being fetched: "
                f"{_describe(error)}",
            )
        elif isinstance(error, TemporaryFailure):
            log.warning("imap poll paused: database unavailable", extra=fields)
        elif isinstance(error, OSError | IMAPClient.Error | LeaseLost):
            log.warning("imap connection failed; will reconnect", extra=fields)
        else:
            log.error("imap poller error; will retry", extra=fields, exc_info=error)
        with suppress(TemporaryFailure):
            self._report(connected=False, last_error=_describe(error))

    # -- one session -----------------------------------------------------------------------

    def _session(self) -> None:
        """Connect and serve until stopped; returns without error when it should just go on
        (standby, lease lost, or a healthy connection dropped: reconnect at once)."""
        if self.stop.is_set():
            return
        mailboxes.ensure(self.app.db, self.mailbox.name)
        if not self._take_lease():
            self._set(standby=True)
            self.stop.wait(self.timing.renew_every)
            return
        self._set(standby=False)
        client = self._connect()
        healthy = False
        try:
            uidvalidity, can_idle = self._open(client)
            while not self.stop.is_set():
                self._poll(client, uidvalidity)
                healthy = True
                self._wait(client, can_idle)
        except LeaseLost:
            log.warning(
                "imap lease taken by another instance", extra={"mailbox": self.mailbox.name}
            )
        except (OSError, IMAPClient.AbortError) as exc:
            if not healthy:
                raise
            log.warning(
                "imap connection lost; reconnecting",
                extra={"mailbox": self.mailbox.name, "error": _describe(exc)},
            )
        finally:
            self._set(idling=False)
            with suppress(Exception):
                client.logout()
            with suppress(TemporaryFailure):
                self._report(connected=False)

    def _connect(self) -> IMAPClient:
        mb = self.mailbox
        context = ssl.create_default_context()
        client = IMAPClient(
            mb.host,
            mb.port,
            ssl=mb.security == "tls",
            ssl_context=context,
            timeout=self.timing.timeout,
        )
        try:
            if mb.security == "starttls":
                client.starttls(context)
            if mb.oauth2:
                client.oauth2_login(mb.username, oauth2_token(mb.oauth2, f"{self.what}.oauth2"))
            else:
                client.login(mb.username, read_secret(mb, self.what) or "")
        except BaseException:
            with suppress(Exception):
                client.shutdown()
            raise
        return client

    def _open(self, client: IMAPClient) -> tuple[int, bool]:
        """Select the folder, create the target folders, and handle a UIDVALIDITY change."""
        mb = self.mailbox
        folders = [mb.quarantine_folder]
        if mb.after_import == "move":
            folders.append(mb.processed_folder)
        for folder in folders:
            if not client.folder_exists(folder):
                client.create_folder(folder)
        uidvalidity = int(client.select_folder(mb.folder)[b"UIDVALIDITY"])
        with self.app.db.transaction() as session:
            known, _ = mailboxes.cursor(session, mb.name)
            if known != uidvalidity:
                if known is not None:
                    log.warning(
                        "imap UIDVALIDITY changed; rescanning the folder (duplicates are "
                        "recognised)",
                        extra={"mailbox": mb.name, "old": known, "new": uidvalidity},
                    )
                if not mailboxes.advance(session, mb.name, self.holder, uidvalidity, 0):
                    raise LeaseLost
        can_idle = client.has_capability("IDLE")
        self._report(connected=True, last_error="")
        self._set(connections=self.connections + 1)
        log.info(
            "imap connected",
            extra={"mailbox": mb.name, "folder": mb.folder, "idle": can_idle},
        )
        return uidvalidity, can_idle

    # -- fetching ------------------------------------------------------------------------

    def _poll(self, client: IMAPClient, uidvalidity: int) -> None:
        """Drain everything above the cursor, in chunks, so a huge backlog never sits in RAM."""
        self._renew()
        with self.app.db.transaction() as session:
            _, last_uid = mailboxes.cursor(session, self.mailbox.name)
        # "last+1:*" always matches the highest UID, even one at or below the cursor.
        uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        backlog = len(uids)
        if uids:
            log.info("imap new mail", extra={"mailbox": self.mailbox.name, "backlog": backlog})
        for start in range(0, len(uids), self.timing.chunk):
            chunk = uids[start : start + self.timing.chunk]
            self._report(backlog=backlog)
            sizes = {
                uid: int(data[b"RFC822.SIZE"])
                for uid, data in client.fetch(chunk, ["RFC822.SIZE"]).items()
            }
            for group in self._groups(chunk, sizes):
                self._import(client, uidvalidity, group, sizes)
            backlog -= len(chunk)
            self._renew()
        self._report(backlog=0, last_success_at=clock.now(), last_error="")
        if uids:
            log.info(
                "imap mailbox drained", extra={"mailbox": self.mailbox.name, "done": len(uids)}
            )

    def _groups(self, chunk: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
        """Consecutive UIDs whose bodies together stay under chunk_bytes."""
        group: list[int] = []
        total = 0
        for uid in chunk:
            size = min(sizes.get(uid, 0), self.app.settings.limits.max_message_bytes)
            if group and total + size > self.timing.chunk_bytes:
                yield group
                group, total = [], 0
            group.append(uid)
            total += size
        if group:
            yield group

    def _import(
        self, client: IMAPClient, uidvalidity: int, uids: list[int], sizes: dict[int, int]
    ) -> None:
        """Ingest the group in one commit; then file what was done, then move the cursor past
        it. A message that failed for now is left, and so is everything after it in the
        folder's UID order until the next try (the cursor stops before it; what was filed
        meanwhile is recognised then as a duplicate)."""
        limit = self.app.settings.limits.max_message_bytes
        wanted = [uid for uid in uids if uid in sizes and sizes[uid] <= limit]
        fetched = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
        bodies = {uid: fetched.get(uid, {}).get(b"BODY[]") for uid in uids}
        taken = [uid for uid in uids if sizes.get(uid) is not None and bodies[uid] is not None]
        outcomes = dict(
            zip(
                taken,
                ingest_group(
                    self.app,
                    [Delivery(bodies[uid] or b"", self.source) for uid in taken],
                    ahead=self.ahead,
                ),
                strict=True,
            )
        )
        if any(isinstance(o, IngestResult) and o.queued_mail for o in outcomes.values()):
            self.on_queued()
        filed: dict[str, list[int]] = {PROCESSED: [], QUARANTINE: [], LEFT: []}
        failure: TemporaryFailure | None = None
        done = 0
        for uid in uids:
            outcome = outcomes.get(uid)
            if isinstance(outcome, TemporaryFailure):
                failure = failure or outcome
            where = self._where(uid, sizes.get(uid), bodies[uid], outcome)
            filed[where].append(uid)
            if failure is None:
                done = uid
        self._file(client, filed)
        if failure is not None:
            if done:
                self._advance(uidvalidity, done)
            raise failure
        self._advance(uidvalidity, uids[-1])
        self._set(handled=self.handled + len(uids))

    def _where(self, uid: int, size: int | None, raw: bytes | None, outcome: Outcome | None) -> str:
        """Where one message goes; a temporary failure leaves it for the next try."""
        name, limit = self.mailbox.name, self.app.settings.limits.max_message_bytes
        if size is None:
            return LEFT  # expunged by someone else since the search
        if raw is None:
            fields = {"mailbox": name, "uid": uid, "size": size, "limit": limit}
            log.warning("imap message too large; left in the mailbox", extra=fields)
            self._alert(
                f"mailbox {name}: message too large",
                f"Message UID {uid} in folder {self.mailbox.folder} has {size} bytes, over the "
                f"limit of {limit}. It was left in the mailbox; handle it by hand.",
            )
            return LEFT
        assert outcome is not None, "every message fetched whole was ingested"
        if isinstance(outcome, TemporaryFailure):
            return LEFT
        if isinstance(outcome, Exception):
            log.error(
                "imap message could not be ingested; left in the mailbox",
                extra={"mailbox": name, "uid": uid, "error": _describe(outcome)},
            )
            self._alert(
                f"mailbox {name}: message could not be ingested",
                f"Message UID {uid} in folder {self.mailbox.folder} failed; see the log. "
                "It was left in the mailbox.",
            )
            return LEFT
        if outcome.outcome == QUARANTINED or (
            outcome.outcome == DUPLICATE and self._was_quarantined(raw)
        ):
            log.warning(
                "imap message quarantined",
                extra={"mailbox": name, "uid": uid, "reason": outcome.reason},
            )
            return QUARANTINE
        return PROCESSED

    def _was_quarantined(self, raw: bytes) -> bool:
        with self.app.db.transaction() as session:
            status = mailboxes.inbound_status(session, hashlib.sha256(raw).hexdigest())
        return status == QUARANTINED

    def _file(self, client: IMAPClient, filed: dict[str, list[int]]) -> None:
        mb = self.mailbox
        if filed[QUARANTINE]:
            _move(client, filed[QUARANTINE], mb.quarantine_folder)
        done = filed[PROCESSED]
        if not done:
            return
        if mb.after_import == "move":
            _move(client, done, mb.processed_folder)
        elif mb.after_import == "seen":
            client.add_flags(done, [SEEN], silent=True)
        else:
            client.delete_messages(done, silent=True)
            _expunge(client, done)

    # -- waiting -------------------------------------------------------------------------

    def _wait(self, client: IMAPClient, can_idle: bool) -> None:
        """Until new mail or the next poll. An IDLE cycle lasts at most renew_every: the poll
        that ends it renews the lease, finds what IDLE missed, and notices a dead connection
        that never said goodbye."""
        interval = self.mailbox.poll_interval.total_seconds()
        if not can_idle:
            deadline = time.monotonic() + interval
            while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                self.stop.wait(min(left, self.timing.renew_every))
                self._renew()
            return
        deadline = time.monotonic() + min(interval, self.timing.renew_every)
        check = self.timing.idle_check
        client.idle()
        self._set(idling=True)
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                # Any response (new mail, expunge, BYE), or an early empty return (the server
                # closed the connection), ends the cycle; the poll sorts it out.
                if client.idle_check(timeout=check) or time.monotonic() - started < check / 2:
                    break
        finally:
            self._set(idling=False)
        client.idle_done()

    # -- state -------------------------------------------------------------------------

    def _take_lease(self) -> bool:
        with self.app.db.transaction() as session:
            return mailboxes.take_lease(
                session, self.mailbox.name, self.holder, clock.now(), self.timing.lease_ttl
            )

    def _renew(self) -> None:
        if not self._take_lease():
            raise LeaseLost

    def _advance(self, uidvalidity: int, last_uid: int) -> None:
        with self.app.db.transaction() as session:
            if not mailboxes.advance(
                session, self.mailbox.name, self.holder, uidvalidity, last_uid
            ):
                raise LeaseLost

    def _report(self, **health: object) -> None:
        with self.app.db.transaction() as session:
            mailboxes.report(session, self.mailbox.name, self.holder, **health)

    def _alert(self, subject: str, body: str) -> None:
        """Tell the admin by mail (rate-limited by queue_alert); the log has it regardless."""
        try:
            with self.app.db.transaction() as session:
                queued = queue_alert(self.app, session, subject, body, clock.now())
        except TemporaryFailure:
            return
        if queued:
            self.on_queued()

    def _set(self, **state: object) -> None:
        with self.changed:
            for key, value in state.items():
                setattr(self, key, value)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[Poller], bool], timeout: float) -> bool:
        """Block until predicate(self) holds, woken by each state change (for tests)."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)


def _move(client: IMAPClient, uids: list[int], folder: str) -> None:
    if client.has_capability("MOVE"):
        client.move(uids, folder)
        return
    client.copy(uids, folder)
    client.delete_messages(uids, silent=True)
    _expunge(client, uids)


def _expunge(client: IMAPClient, uids: list[int]) -> None:
    """Only our messages where UIDPLUS allows; a plain EXPUNGE would also purge others'."""
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()


def _describe(error: BaseException | None) -> str:
    if error is None:
        return ""
    text = str(error)
    if text.startswith(("b'", 'b"')):  # imaplib passes the server's bytes through str()
        text = text[2:-1]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Gateway:
    """The pollers of all configured mailboxes, each in its own thread. Leases are held in
    the instance's name, so a restarted instance resumes its mailboxes at once, while
    another instance waits for them to run out."""

    def __init__(
        self,
        app: App,
        on_queued: Callable[[], None],
        timing: Timing = Timing(),
        ahead: ParseAhead | None = None,
    ) -> None:
        self.stopping = threading.Event()
        self.pollers = [
            Poller(app, mailbox, on_queued, self.stopping, app.settings.instance, timing, ahead)
            for mailbox in app.settings.mailboxes
        ]
        self.threads = [
            threading.Thread(target=p.run, name=f"imap-{p.mailbox.name}", daemon=True)
            for p in self.pollers
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Prompt: each loop notices the event within Timing.idle_check seconds."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
