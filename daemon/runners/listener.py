"""The SMTP and LMTP listeners: recipients checked at RCPT, the message ingested before 250.

Only our support addresses are accepted (no open relay). Every session's DATA goes to one
committer, which ingests whatever is waiting as one group in a worker thread, so the event
loop keeps serving other connections and concurrent sessions share one raw segment and
one durable commit before their 250s; a database or disk failure answers 451 and the
sending MTA keeps the mail and retries. Connections are bounded in all and per
client address (a client beyond either limit gets 421 and is disconnected), and one that
sends no command for `listen.idle_timeout` is closed: idle connections cannot use up the
daemon's file descriptors. `postdesk ingest -` hands piped mail to an LMTP server on a
local socket that only the daemon's user and group may use (daemon/handoff.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from postdesk.daemon import handoff
from postdesk.daemon.app import App
from postdesk.daemon.counters import CONNECTIONS_REFUSED
from postdesk.daemon.errors import smtp_reply
from postdesk.daemon.pipeline.ingest import Delivery, Outcome, ingest_group
from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.pipeline.result import IngestResult

log = logging.getLogger("postdesk.listener")


class Committer:
    """The one writer of both listeners. A message waits only while a group is being
    committed: the next group is whatever arrived meanwhile (up to GROUP_BYTES), so a
    lone message goes at once and a busy listener pays one fsync per group."""

    GROUP_BYTES = 20 * 1024 * 1024

    def __init__(
        self, app: App, on_queued: Callable[[], None], ahead: ParseAhead | None = None
    ) -> None:
        self.app = app
        self.on_queued = on_queued
        self.ahead = ahead
        """Parses a group while its first messages are written."""
        self.waiting: list[tuple[Delivery, asyncio.Future[Outcome]]] = []
        self.draining: asyncio.Task[None] | None = None

    async def ingest(self, delivery: Delivery) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting.append((delivery, future))
        if self.draining is None:
            self.draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                group = self._next_group()
                try:
                    outcomes = await asyncio.to_thread(
                        ingest_group,
                        self.app,
                        [delivery for delivery, _ in group],
                        None,
                        self.ahead,
                    )
                except Exception as exc:
                    outcomes = [exc] * len(group)
                if any(isinstance(o, IngestResult) and o.queued_mail for o in outcomes):
                    self.on_queued()
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if not future.done():  # a session that went away meanwhile
                        future.set_result(outcome)
        finally:
            self.draining = None

    def _next_group(self) -> list[tuple[Delivery, asyncio.Future[Outcome]]]:
        size, count = 0, 0
        for delivery, _ in self.waiting:
            if count and size + len(delivery.raw) > self.GROUP_BYTES:
                break
            size += len(delivery.raw)
            count += 1
        group, self.waiting = self.waiting[:count], self.waiting[count:]
        return group


class IngestHandler:
    def __init__(self, app: App, protocol: str, committer: Committer) -> None:
        self.app = app
        self.protocol = protocol
        self.source = protocol
        """Recorded with each message (rules match on it)."""
        self.committer = committer

    def size_limit(self) -> int | None:
        return self.app.settings.limits.max_message_bytes

    def accepted(self, result: IngestResult) -> str:
        return f"250 2.0.0 OK {result.outcome}"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.app.accepts(address):
            log.info("recipient refused", extra={"rcpt": address, "peer": session.peer})
            return f"550 5.1.1 <{address}>: recipient not accepted here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        outcome = await self.committer.ingest(Delivery(raw, self.source, tuple(envelope.rcpt_tos)))
        if isinstance(outcome, Exception):
            log.error("message not accepted", extra={"error": str(outcome), "peer": session.peer})
            reply = smtp_reply(outcome)
        else:
            reply = self.accepted(outcome)
        if self.protocol == "lmtp":
            return "\r\n".join([reply] * len(envelope.rcpt_tos))
        return reply


class PipeHandler(IngestHandler):
    """The local socket's messages come from `postdesk ingest -`: recorded as piped, their
    bytes as the MTA piped them, and the 250 says what `ingest` prints."""

    def __init__(self, app: App, committer: Committer) -> None:
        super().__init__(app, "lmtp", committer)
        self.source = "pipe"

    def size_limit(self) -> None:
        """None, as for `ingest` in process: the MTA in front has its own limit."""

    def accepted(self, result: IngestResult) -> str:
        return handoff.accepted_reply(result.outcome, result.ticket_number, result.reason)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            envelope.original_content = handoff.decode_message(envelope.original_content or b"")
        except ValueError as exc:
            log.error("not a piped message", extra={"error": str(exc)})
            refusal = "554 5.6.0 not a message from postdesk ingest"
            return "\r\n".join([refusal] * len(envelope.rcpt_tos))
        return await super().handle_DATA(server, session, envelope)


class Connections:
    """Open connections of every listener, in all and per client address. The limits are
    read from the settings at each connection, so a reload changes them at once."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.per_client: Counter[str] = Counter()
        self.total = 0

    def admit(self, client: str) -> str:
        """'' when the client may connect (it is then counted), else why it may not."""
        listen = self.app.settings.listen
        if self.total >= listen.max_connections:
            return f"too many connections ({self.total}), try again later"
        if self.per_client[client] >= listen.max_connections_per_client:
            return f"too many connections from {client}, try again later"
        self.total += 1
        self.per_client[client] += 1
        return ""

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if not self.per_client[client]:
            del self.per_client[client]


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP session, refused with 421 before its greeting when a limit is hit."""

    def __init__(self, handler: IngestHandler, connections: Connections, **options: Any) -> None:
        super().__init__(handler, **options)
        self.connections = connections
        self.client: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        refusal = self.connections.admit(client)
        if refusal:
            CONNECTIONS_REFUSED.inc()
            log.warning("connection refused", extra={"peer": peer, "reason": refusal})
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(f"421 4.7.0 {refusal}\r\n".encode())
            transport.close()
            return
        self.client = client
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        """A refused connection never started a session: there is nothing to end."""
        if self.client is None:
            return
        self.connections.release(self.client)
        self.client = None
        super().connection_lost(error)


class GuardedLMTP(GuardedSMTP, LMTP):
    pass


def sessions(handler: IngestHandler, connections: Connections) -> Callable[[], SMTP]:
    """A new session per connection, with the limits in force at that moment."""
    server_class = GuardedLMTP if handler.protocol == "lmtp" else GuardedSMTP

    def factory() -> SMTP:
        return server_class(
            handler,
            connections,
            data_size_limit=handler.size_limit(),
            enable_SMTPUTF8=True,
            timeout=handler.app.settings.listen.idle_timeout.total_seconds(),
        )

    return factory


async def start(
    app: App,
    protocol: str,
    host: str,
    port: int,
    committer: Committer,
    connections: Connections,
) -> asyncio.Server:
    factory = sessions(IngestHandler(app, protocol, committer), connections)
    server = await asyncio.get_running_loop().create_server(factory, host, port)
    log.info("listening", extra={"protocol": protocol, "address": f"{host}:{port}"})
    return server


async def start_pipe(
    app: App, path: Path, committer: Committer, connections: Connections
) -> asyncio.Server:
    """LMTP on a Unix socket of mode 0660: set before it listens, so no other user can
    connect in between. A socket left by a daemon that died is replaced."""
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
        factory = sessions(PipeHandler(app, committer), connections)
        server = await asyncio.get_running_loop().create_unix_server(factory, sock=sock)
    except OSError:
        sock.close()
        raise
    log.info("listening", extra={"protocol": "socket", "address": str(path)})
    return server
