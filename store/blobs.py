"""Content-addressed files: raw messages and attachments, written atomically and durably."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from postdesk.config.errors import TemporaryFailure

SHA256 = re.compile(r"[0-9a-f]{64}")


def fsync_folder(folder: Path) -> None:
    """Make a file's new name in ``folder`` durable, as its content was."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class BlobStore:
    """Files named by the sha256 of their content, so a second write of the same bytes keeps
    the first file and costs no fsync."""

    def __init__(self, root: Path, suffix: str = "") -> None:
        self.root = root
        self.suffix = suffix

    def path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 key: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}{self.suffix}"

    def put(self, data: bytes | Iterable[bytes]) -> str:
        """Store data and fsync it before returning its key; disk errors are temporary.

        Data may come as chunks, hashed as they are written, so that an attachment streamed
        from a large message is never whole in memory; its key is known only at the end,
        hence the temporary file in the root folder. Whole bytes already stored (a message
        delivered again) are recognised before anything is written.
        """
        if isinstance(data, bytes | bytearray):
            sha256 = hashlib.sha256(data).hexdigest()
            if self.path(sha256).exists():
                return sha256
            data = (data,)
        digest = hashlib.sha256()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    for chunk in data:
                        digest.update(chunk)
                        fh.write(chunk)
                    target = self.path(digest.hexdigest())
                    known = target.exists()
                    if not known:
                        fh.flush()
                        os.fsync(fh.fileno())
                if known:
                    Path(tmp).unlink()
                    return digest.hexdigest()
                target.parent.mkdir(exist_ok=True)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            fsync_folder(target.parent)
        except OSError as exc:
            raise TemporaryFailure(
                f"cannot store blob in {self.root}: {exc.strerror or exc}"
            ) from exc
        return digest.hexdigest()

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def stored(self) -> Iterator[str]:
        """Every stored key; temporary files of writes in progress are not keys."""
        for path in self.root.glob(f"??/*{self.suffix}"):
            key = path.name.removesuffix(self.suffix)
            if SHA256.fullmatch(key):
                yield key
