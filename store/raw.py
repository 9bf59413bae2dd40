"""Raw messages, durable before their transaction commits: one file per message received
alone, one segment file per group received together.

A message alone keeps the layout every version wrote (``raw/<xx>/<sha256>.eml``), so raw
files of an older installation read as they always did. A group (a batch of files, the
listener's concurrent sessions, an IMAP chunk) is written as one segment with one fsync,
where a file per message cost a create, an fsync, a rename and a directory fsync each.
Each record of a segment says its own key and size, so a segment whose transaction never
committed is read back at start without the database; the ``raw_parts`` rows written in
the group's transaction find a committed message's bytes without reading every segment.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Insert
from sqlalchemy.orm import Session

from postdesk.config.errors import TemporaryFailure
from postdesk.store.blobs import SHA256, BlobStore, fsync_folder
from postdesk.store.db import Database, dialect_insert, insert_many, table_of, typed_binds
from postdesk.store.models import RawPart

SEGMENT_SUFFIX = ".seg"


@dataclass(frozen=True)
class Part:
    """Where one raw message's bytes are: a whole file (``start`` 0) or a segment's record."""

    sha256: str
    path: Path
    start: int
    size: int

    def read(self) -> bytes:
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise OSError(f"{self.path}: raw message {self.sha256} cut short")
        return data

    def arrived(self) -> datetime:
        """When the bytes reached the disk: the time a recovered message is ingested as of."""
        return datetime.fromtimestamp(self.path.stat().st_mtime, UTC)


@dataclass(frozen=True)
class Segment:
    """A group's segment as written, for its rows in the group's transaction."""

    name: str
    parts: tuple[Part, ...]


class RawStore:
    def __init__(self, root: Path, db: Database) -> None:
        self.files = BlobStore(root, ".eml")
        self.segments = root / "segments"
        self.db = db

    def path(self, sha256: str) -> Path:
        """The file of a message stored alone (it may not exist: see ``get``)."""
        return self.files.path(sha256)

    def put(self, raw: bytes) -> str:
        return self.files.put(raw)

    def put_group_soon(self, raws: Sequence[bytes]) -> Future[Segment | None]:
        """`put_group` in a thread of its own, while the caller works on the messages: the
        fsyncs wait for the disk without the interpreter, and the caller waits for them
        only before its commit (`Future.result`, which raises what `put_group` raised)."""
        return _writers().submit(self.put_group, raws)

    def put_group(self, raws: Sequence[bytes]) -> Segment | None:
        """Store every message not stored yet, durably, before returning; disk errors are
        temporary. One new message gets its own file; several share one segment."""
        new: dict[str, bytes] = {}
        for raw in raws:
            sha256 = hashlib.sha256(raw).hexdigest()
            if sha256 not in new and not self.files.path(sha256).exists():
                new[sha256] = raw
        if len(new) == 1:
            self.files.put(next(iter(new.values())))
        if len(new) < 2:
            return None
        try:
            return self._write_segment(new)
        except OSError as exc:
            raise TemporaryFailure(
                f"cannot store blob in {self.segments}: {exc.strerror or exc}"
            ) from exc

    def _write_segment(self, records: dict[str, bytes]) -> Segment:
        """Named by the keys it holds, in order: the same group written again is the same
        file, so replacing it loses nothing."""
        name = hashlib.sha256("".join(records).encode()).hexdigest() + SEGMENT_SUFFIX
        target = self.segments / name
        self.segments.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.segments, prefix=".tmp-")
        parts = []
        try:
            with os.fdopen(fd, "wb") as fh:
                offset = 0
                for sha256, raw in records.items():
                    head = b"%s %d\n" % (sha256.encode(), len(raw))
                    fh.write(head)
                    fh.write(raw)
                    parts.append(Part(sha256, target, offset + len(head), len(raw)))
                    offset += len(head) + len(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_folder(self.segments)
        return Segment(name, tuple(parts))

    def get(self, sha256: str) -> bytes:
        """A stored message's bytes: its own file, or its record in a committed segment."""
        path = self.files.path(sha256)
        if path.exists():
            return path.read_bytes()
        part = self._committed(sha256)
        if part is None:
            raise FileNotFoundError(f"no raw message {sha256}")
        return part.read()

    def location(self, sha256: str) -> str:
        """Where an admin finds the bytes: a file, or a segment and the record's offset."""
        path = self.files.path(sha256)
        part = None if path.exists() else self._committed(sha256)
        return str(path) if part is None else f"{part.path}@{part.start}"

    def _committed(self, sha256: str) -> Part | None:
        with self.db.transaction() as session:
            row = session.get(RawPart, sha256)
            if row is None:
                return None
            return Part(sha256, self.segments / row.segment, row.start, row.size)

    def parts(self) -> Iterator[Part]:
        """Every stored message, in files and segments, read from the disk alone: what the
        recovery at start compares with the database."""
        for sha256 in self.files.stored():
            path = self.files.path(sha256)
            yield Part(sha256, path, 0, path.stat().st_size)
        for path in sorted(self.segments.glob(f"*{SEGMENT_SUFFIX}")):
            yield from _records(path)


def _records(path: Path) -> Iterator[Part]:
    """The records of one segment; a record cut short ends it (only an unanswered group
    that never reached its fsync can leave one)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        while head := fh.readline(80):
            sha256, _, length = head.decode("ascii", "replace").strip().partition(" ")
            if not SHA256.fullmatch(sha256) or not length.isdigit():
                return
            start = fh.tell()
            if start + int(length) > size:
                return
            yield Part(sha256, path, start, int(length))
            fh.seek(start + int(length))


@functools.cache
def _writers() -> ThreadPoolExecutor:
    """Shared by the daemon's listeners and mailboxes, each group one writer while it lasts;
    started at the first group, after the parse worker's fork, which wants no threads."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="postdesk-raw")


def record(session: Session, segment: Segment | None) -> None:
    """The rows of a group's segment, in the group's transaction; bytes already found in an
    earlier segment keep their first place."""
    if segment is None:
        return
    conn = session.connection()
    insert_many(
        conn,
        _record_part(conn.dialect.name),
        [
            {"sha256": p.sha256, "segment": segment.name, "start": p.start, "size": p.size}
            for p in segment.parts
        ],
    )


@functools.cache
def _record_part(dialect: str) -> Insert:
    table = table_of(RawPart)
    keys = ("sha256", "segment", "start", "size")
    return dialect_insert(dialect, table).values(typed_binds(table, keys)).on_conflict_do_nothing()
