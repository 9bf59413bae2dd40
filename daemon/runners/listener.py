"""The SMTP and LMTP listeners: recipients checked at RCPT, the message ingested before 250.

Only our support addresses are accepted (no open relay). Ingest runs in a worker thread so
the event loop keeps serving other connections; a database or disk failure answers 451
and the sending MTA keeps the mail and retries. Connections are bounded in all and per
client address (a client beyond either limit gets 421 and is disconnected), and one that
sends no command for `listen.idle_timeout` is closed: idle connections cannot use up the
daemon's file descriptors.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from postdesk.daemon.app import App
from postdesk.daemon.counters import CONNECTIONS_REFUSED
from postdesk.daemon.errors import smtp_reply
from postdesk.daemon.pipeline.ingest import ingest

log = logging.getLogger("postdesk.listener")


class IngestHandler:
    def __init__(self, app: App, protocol: str, on_queued: Callable[[], None]) -> None:
        self.app = app
        self.protocol = protocol
        self.on_queued = on_queued

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
        try:
            result = await asyncio.to_thread(
                ingest, self.app, raw, self.protocol, envelope_to=tuple(envelope.rcpt_tos)
            )
        except Exception as exc:
            log.error("message not accepted", extra={"error": str(exc), "peer": session.peer})
            reply = smtp_reply(exc)
        else:
            if result.queued_mail:
                self.on_queued()
            reply = f"250 2.0.0 OK {result.outcome}"
        if self.protocol == "lmtp":
            return "\r\n".join([reply] * len(envelope.rcpt_tos))
        return reply


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


async def start(
    app: App,
    protocol: str,
    host: str,
    port: int,
    on_queued: Callable[[], None],
    connections: Connections,
) -> asyncio.Server:
    handler = IngestHandler(app, protocol, on_queued)
    server_class = GuardedLMTP if protocol == "lmtp" else GuardedSMTP

    def factory() -> SMTP:
        settings = app.settings
        return server_class(
            handler,
            connections,
            data_size_limit=settings.limits.max_message_bytes,
            enable_SMTPUTF8=True,
            timeout=settings.listen.idle_timeout.total_seconds(),
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host, port)
    log.info("listening", extra={"protocol": protocol, "address": f"{host}:{port}"})
    return server
