"""The SMTP and LMTP listeners: recipients checked at RCPT, the message ingested before 250.

Only our support addresses are accepted (no open relay). Ingest runs in a worker thread so
the event loop keeps serving other connections; a database or disk failure answers 451
and the sending MTA keeps the mail and retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from postdesk.daemon.app import App
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
            result = await asyncio.to_thread(ingest, self.app, raw, self.protocol)
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


async def start(
    app: App, protocol: str, host: str, port: int, on_queued: Callable[[], None]
) -> asyncio.Server:
    handler = IngestHandler(app, protocol, on_queued)
    server_class: Any = LMTP if protocol == "lmtp" else SMTP
    limit = app.settings.limits.max_message_bytes

    def factory() -> SMTP:
        server: SMTP = server_class(handler, data_size_limit=limit, enable_SMTPUTF8=True)
        return server

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host, port)
    log.info("listening", extra={"protocol": protocol, "address": f"{host}:{port}"})
    return server
