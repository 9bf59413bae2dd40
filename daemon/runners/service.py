"""`postdesk run`: listeners, the outbox sender, signals and systemd notification."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import asdict
from pathlib import Path

import sdnotify
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from postdesk.config.errors import ConfigError
from postdesk.config.schema import parse_host_port
from postdesk.daemon import clock, counters
from postdesk.daemon.app import App
from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.pipeline.recover import recover
from postdesk.daemon.runners import imap, listener, prometheus
from postdesk.daemon.runners.sender import deliver_due
from postdesk.daemon.sweeps.run import run as run_sweeps
from postdesk.store import outbox
from postdesk.store.schema import ensure_current

log = logging.getLogger("postdesk.service")

SENDER_FALLBACK_SECONDS = 30.0
SWEEP_INTERVAL = 60
WATCH_SECONDS = 2.0
LISTENERS = ("smtp", "lmtp", "socket")
"""The keys of `listen` that name a listener; `socket` is the one of `postdesk ingest -`."""
RESTART_KEYS = ("database", "data_dir", "secret_file", "instance", "mailboxes", "metrics")
"""Settings read once at start: a reload that changes them says they need a restart."""


class Service:
    def __init__(self, app: App) -> None:
        self.app = app
        self.stopping = asyncio.Event()
        self.mail_waiting = asyncio.Event()
        self.mail_waiting.set()  # mail queued before a restart leaves at once, not in 30 s
        self.notifier = sdnotify.SystemdNotifier()
        self.connections = listener.Connections(app)
        """Open connections of every listener, kept across a rebind."""
        self.ahead = ParseAhead()
        """The parse worker of the listeners and IMAP pollers; `run` starts and closes it."""
        self.committer = listener.Committer(app, self.wake_sender, self.ahead)
        """The one writer that commits the listeners' messages together."""
        self.servers: dict[str, tuple[str, asyncio.Server]] = {}
        """Each listening protocol's bound address and server."""
        self._reloading = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    def wake_sender(self) -> None:
        self.mail_waiting.set()

    async def run(self) -> None:
        ensure_current(self.app.db)
        outcomes = [r for _, r in await asyncio.to_thread(list, recover(self.app))]
        if outcomes:
            failed = outcomes.count(None)
            log.info("recovery done", extra={"recovered": len(outcomes) - failed, "failed": failed})
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        with self.app.db.transaction() as session:
            resumed = outbox.resume_claims(session, self.app.settings.instance, clock.now())
        if resumed:
            log.info("outbox claims of this instance resumed", extra={"rows": resumed})
        await self._start_listeners()
        listen = self.app.settings.metrics.listen
        exporter = prometheus.start(self.app, listen) if listen else None

        # Pollers run in threads: they wake the sender through the loop, thread-safely.
        def wake() -> None:
            loop.call_soon_threadsafe(self.wake_sender)

        gateway = imap.Gateway(self.app, wake, ahead=self.ahead)
        gateway.start()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self._sweep,
            "interval",
            seconds=SWEEP_INTERVAL,
            max_instances=1,
            coalesce=True,
            next_run_time=clock.now(),
        )
        scheduler.start()
        tasks = [
            asyncio.create_task(self._sender(), name="outbox"),
            asyncio.create_task(self._watch_files(self.app.watched_files()), name="watch"),
        ]
        if os.environ.get("WATCHDOG_USEC"):
            tasks.append(asyncio.create_task(self._watchdog(), name="watchdog"))
        self.notifier.notify("READY=1")
        log.info("postdesk ready", extra={"database": self.app.db.engine.url.render_as_string()})
        await self.stopping.wait()
        self.notifier.notify("STOPPING=1")
        log.info("stopping")
        for protocol, (_, server) in list(self.servers.items()):
            self._close(protocol)
            await server.wait_closed()
        scheduler.shutdown(wait=False)
        if exporter:
            await asyncio.to_thread(exporter.shutdown)
            exporter.server_close()
        await asyncio.to_thread(gateway.stop)
        self.mail_waiting.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.app.db.dispose()
        log.info("stopped")

    def _address(self, protocol: str) -> str | None:
        if protocol == "socket":
            path = self.app.settings.pipe_socket
            return str(path) if path else None
        address: str | None = getattr(self.app.settings.listen, protocol)
        return address

    async def _start_listeners(self) -> None:
        for protocol in LISTENERS:
            address = self._address(protocol)
            if address:
                try:
                    self.servers[protocol] = (address, await self._listen(protocol, address))
                except OSError as exc:
                    if not self._optional(protocol):
                        raise ConfigError(
                            f"listen.{protocol}: cannot listen on {address}: {exc}"
                        ) from exc
                    log.warning(
                        "no pipe socket: `postdesk ingest -` ingests in process; set "
                        "listen.socket to a shorter path (or null) to choose",
                        extra={"address": address, "error": str(exc)},
                    )

    def _optional(self, protocol: str) -> bool:
        """The pipe's socket only speeds piped mail up, so the default one (a data folder
        too deep for a socket path, say) that cannot be bound must not keep the daemon down;
        one the admin set must."""
        return protocol == "socket" and "socket" not in self.app.settings.listen.model_fields_set

    async def _listen(self, protocol: str, address: str) -> asyncio.Server:
        if protocol == "socket":
            return await listener.start_pipe(
                self.app, Path(address), self.committer, self.connections
            )
        host, port = parse_host_port(address)
        return await listener.start(
            self.app, protocol, host, port, self.committer, self.connections
        )

    def _close(self, protocol: str) -> None:
        """A closed socket's file goes too, so that `ingest -` meets no socket at all."""
        address, server = self.servers.pop(protocol)
        server.close()
        if protocol == "socket":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)
        log.info("listener closed", extra={"protocol": protocol, "address": address})

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload(self) -> None:
        """New settings, rules and templates if they validate; a changed listener address is
        bound at once, and keys read only at start are named in the log."""
        async with self._reloading:
            self.notifier.notify("RELOADING=1")
            before = self.app.settings
            try:
                self.app.reload()
            except ConfigError as exc:
                log.error("reload refused, previous configuration stays", extra={"error": str(exc)})
            else:
                self.wake_sender()  # a fixed relay setting is tried at once
                await self._rebind()
                pending = [
                    k for k in RESTART_KEYS if getattr(before, k) != getattr(self.app.settings, k)
                ]
                if pending:
                    log.warning(
                        "these changed keys take effect only after a restart",
                        extra={"keys": ",".join(pending)},
                    )
            self.notifier.notify("READY=1")

    async def _rebind(self) -> None:
        """Move each listener whose address changed. If the new address cannot be bound,
        the old one is bound again and the log says so; the MTA retries meanwhile."""
        for protocol in LISTENERS:
            wanted = self._address(protocol)
            old = self.servers[protocol][0] if protocol in self.servers else None
            if wanted == old:
                continue
            if old is not None:
                self._close(protocol)
            if wanted and not await self._bind(protocol, wanted) and old:
                await self._bind(protocol, old)

    async def _bind(self, protocol: str, address: str) -> bool:
        try:
            self.servers[protocol] = (address, await self._listen(protocol, address))
        except OSError as exc:
            log.error(
                f"listen.{protocol}: cannot listen; the setting is not applied",
                extra={"address": address, "error": str(exc)},
            )
            return False
        return True

    async def _sender(self) -> None:
        """Woken by every commit that queued mail; the timer only catches retries."""
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.mail_waiting.wait(), SENDER_FALLBACK_SECONDS)
            self.mail_waiting.clear()
            try:
                await asyncio.to_thread(deliver_due, self.app, None, self.app.settings.instance)
            except Exception:
                log.exception("outbox run failed; will retry")

    async def _sweep(self) -> None:
        """APScheduler only triggers this; what is due lives in the database."""
        try:
            with counters.SWEEP_SECONDS.time():
                stats = await asyncio.to_thread(run_sweeps, self.app, clock.now())
        except Exception:
            log.exception("sweep failed; the next one retries")
            return
        if any(asdict(stats).values()):
            self.wake_sender()

    async def _watch_files(self, seen: dict[str, int]) -> None:
        """Reload when the config, the rules or a template changes on disk, as on SIGHUP.

        ``seen`` is taken before the daemon says it is ready, so no edit falls in between.
        """
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), WATCH_SECONDS)
            current = self.app.watched_files()
            if current != seen:
                seen = current
                log.info("configuration files changed on disk")
                await self._reload()

    async def _watchdog(self) -> None:
        interval = int(os.environ["WATCHDOG_USEC"]) / 2_000_000
        while not self.stopping.is_set():
            self.notifier.notify("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)


def run(app: App) -> None:
    """The parse worker is forked before the loop starts a thread: it shares the memory
    loaded so far, and needs no server of its own to fork it safely."""
    service = Service(app)
    service.ahead.start()
    try:
        asyncio.run(service.run())
    finally:
        service.ahead.close()
