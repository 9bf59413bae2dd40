import hashlib
from pathlib import Path

import pytest

from config.errors import TemporaryFailure
from store.blobs import BlobStore


def test_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", ".eml")
    key = store.put(b"hello")
    assert key == hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == key
    assert store.get(key) == b"hello"
    assert store.path(key).name == f"{key}.eml"
    assert not [p for p in store.path(key).parent.iterdir() if p.name.startswith(".tmp")]


def test_keys_cannot_escape_the_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_unwritable_store_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TemporaryFailure, match="cannot store blob"):
        BlobStore(blocker / "blobs").put(b"data")
