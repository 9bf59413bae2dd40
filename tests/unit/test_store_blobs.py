from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from postdesk.config.errors import TemporaryFailure
from postdesk.store.blobs import BlobStore


def test_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", ".eml")
    key = store.put(b"hello")
    assert key == hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == key
    assert store.get(key) == b"hello"
    assert store.path(key).name == f"{key}.eml"
    assert not list(store.root.rglob(".tmp*"))


def test_chunks_are_stored_as_their_bytes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    chunks = [b"%PDF-1.4\n", b"", b"x" * 100_000]
    key = store.put(iter(chunks))
    assert key == store.put(b"".join(chunks)) == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert store.get(key) == b"".join(chunks)
    assert store.put(iter(chunks)) == key
    assert not list(store.root.rglob(".tmp*"))


def test_failing_chunks_leave_nothing_behind(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise ValueError("broken attachment")

    store = BlobStore(tmp_path)
    with pytest.raises(ValueError, match="broken attachment"):
        store.put(chunks())
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_keys_cannot_escape_the_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_unwritable_store_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TemporaryFailure, match="cannot store blob"):
        BlobStore(blocker / "blobs").put(b"data")
