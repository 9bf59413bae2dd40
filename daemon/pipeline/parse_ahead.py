"""A second process parses a group's messages while this one writes the earlier ones.

Parsing is about a fifth of a message's CPU and needs nothing from the database, so on two
cores a group goes as fast as its database work alone: this process parses the first
message itself and sends the rest to one worker, which sends each result back as soon as
it has it; this process takes them in order as it reaches them. The results come over a
pipe that this process reads itself: a thread of ours that had to take them would wait
for the interpreter lock while this one works, and the worker would wait for it.

Anything that goes wrong with the worker (it died, it hangs) costs only time: what it did
not answer is parsed here, as without a worker, and the next group starts another. Large
messages are parsed here too, so that their bytes are not copied to another process. The
daemon's one worker serves its listeners and IMAP pollers: a group that finds it busy with
another's is parsed here, as before there was a worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from postdesk.daemon import logs
from postdesk.parsers.model import ParseContext

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

log = logging.getLogger("postdesk.ingest")

INLINE_BYTES = 1024 * 1024
"""A message larger than this is parsed in this process: its copy would cost more memory
than its parse takes time."""

RESULT_WAIT = 30.0
"""Seconds to wait for the worker's next result before parsing the rest here."""

T = TypeVar("T")
Parse = Callable[[bytes, ParseContext], T]
"""Raw bytes to a result; it must not raise (a worker's error would be lost)."""

Item = tuple[bytes, ParseContext]


class ParseAhead:
    """One worker process, started when first needed and kept until `close`; usable from
    several threads."""

    def __init__(self) -> None:
        self._worker: tuple[BaseProcess, Connection] | None = None
        self._cannot_start = len(os.sched_getaffinity(0)) < 2
        """One CPU has no room for a worker; or one failed to start: the rest is parsed
        here, with one warning said."""
        self._busy = threading.Lock()
        """Held by the group the worker is parsing for, until it has taken every result."""

    def start(self) -> None:
        """Start the worker now, so that the first group does not wait for it."""
        self._connect()

    def parse_group(self, parse: Parse[T], items: Sequence[Item]) -> Iterator[T]:
        """``parse(raw, ctx)`` of each item, in order; the first and the large ones here,
        the rest by the worker while the caller works on what it was given."""
        sent = [i for i, (raw, _) in enumerate(items) if i and len(raw) <= INLINE_BYTES]
        if not sent or not self._busy.acquire(blocking=False):
            yield from (parse(raw, ctx) for raw, ctx in items)
            return
        conn = self._send(parse, [items[i] for i in sent])
        answered = 0
        try:
            for i, (raw, ctx) in enumerate(items):
                if conn is not None and answered < len(sent) and sent[answered] == i:
                    result = self._receive(conn)
                    if result is not None:
                        answered += 1
                        yield result[0]
                        continue
                    conn = None
                yield parse(raw, ctx)
        finally:
            if conn is not None and answered < len(sent):
                self._drain(conn, len(sent) - answered)
            self._busy.release()

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            process, conn = worker
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
            process.join(RESULT_WAIT)
            if process.is_alive():
                process.kill()
                process.join()

    def _connect(self) -> Connection | None:
        """The worker's end, started if need be; None if no worker can be started (the
        messages are parsed here)."""
        if self._worker is not None and self._worker[0].is_alive():
            return self._worker[1]
        self._lost()
        if self._cannot_start:
            return None
        # fork is instant, shares this process's memory and is safe while no other thread
        # runs (`ingest`, the daemon before its loop starts); once threads run, a fork could
        # copy a lock some thread holds
        method = "fork" if threading.active_count() == 1 else "forkserver"
        try:
            import multiprocessing  # here: a lone message's `ingest` never needs it

            context: Any = multiprocessing.get_context(method)
            if method == "forkserver":
                context.set_forkserver_preload(["postdesk.parsers"])
            ours: Connection
            theirs: Connection
            ours, theirs = context.Pipe()
            level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
            process = context.Process(
                target=_serve, args=(theirs, ours, level), name="postdesk-parse", daemon=True
            )
            process.start()
        except Exception as exc:
            log.warning("no parse worker; parsing here", extra={"error": repr(exc)})
            self._cannot_start = True
            return None
        theirs.close()
        self._worker = (process, ours)
        return ours

    def _send(self, parse: Parse[T], batch: list[Item]) -> Connection | None:
        conn = self._connect()
        if conn is None:
            return None
        try:
            conn.send((parse, batch))
        except Exception as exc:
            self._lost(exc)
            return None
        return conn

    def _receive(self, conn: Connection) -> tuple[Any] | None:
        """The worker's next result, or None when it has none to give: then it is gone."""
        try:
            if conn.poll(RESULT_WAIT):
                return (conn.recv(),)
            error: BaseException = TimeoutError(f"no result in {RESULT_WAIT:.0f} s")
        except Exception as exc:  # it died (EOF), or what it sent cannot be read
            error = exc
        self._lost(error)
        return None

    def _drain(self, conn: Connection, left: int) -> None:
        """Results the caller no longer wants (its group failed) must not answer the next."""
        for _ in range(left):
            if self._receive(conn) is None:
                return

    def _lost(self, error: BaseException | None = None) -> None:
        """Give up the worker, if any; the next group starts another."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if error is not None:
            log.warning("parse worker lost; parsing here", extra={"error": repr(error)})
        process, conn = worker
        conn.close()
        process.kill()
        process.join()


def _serve(conn: Connection, parents: Connection, level: str) -> None:
    """The worker: a batch in, each result out as soon as it is parsed, until the parent
    says stop or its end closes (it died: our copy of its end is closed first, so that
    we see it). It logs as its parent does and leaves signals to it: Ctrl-C and the
    daemon's own handlers (inherited by a fork) are not its business."""
    parents.close()
    with contextlib.suppress(OSError):  # the name `ps -e` and top show, where Linux has it
        Path("/proc/self/comm").write_text("postdesk-parse")
    logs.setup(level)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    while True:
        try:
            work = conn.recv()
        except (EOFError, OSError):
            return
        if work is None:
            return
        parse, batch = work
        for raw, ctx in batch:
            conn.send(parse(raw, ctx))
