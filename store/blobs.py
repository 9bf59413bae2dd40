"""Content-addressed files: raw messages and attachments, written atomically and durably."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from config.errors import TemporaryFailure


class BlobStore:
    """Files named by the sha256 of their content, so a second write of the same bytes is free."""

    def __init__(self, root: Path, suffix: str = "") -> None:
        self.root = root
        self.suffix = suffix

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 key: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}{self.suffix}"

    def put(self, data: bytes) -> str:
        """Store data and fsync it before returning its key; disk errors are temporary."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            return sha256
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise TemporaryFailure(
                f"cannot store blob in {self.root}: {exc.strerror or exc}"
            ) from exc
        return sha256

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()
