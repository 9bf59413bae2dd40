"""The parse worker: what it answers is what this process would have parsed, in order, and
a worker that dies, hangs or is left mid-group costs time, never a message."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from postdesk.daemon.pipeline import parse_ahead
from postdesk.daemon.pipeline.ingest import Delivery, _parse, ingest_group
from postdesk.daemon.pipeline.parse_ahead import ParseAhead
from postdesk.daemon.pipeline.result import IngestResult
from postdesk.parsers.model import ParseContext
from postdesk.store.blobs import BlobStore
from tests.helpers import mail

CORPUS = Path(__file__).parents[1] / "data" / "corpus"


def corpus(count: int) -> list[bytes]:
    files = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".eml", ".txt", ".msg"))
    assert len(files) >= count
    return [p.read_bytes() for p in files[:count]]


def parsed_by(raw: bytes, ctx: ParseContext) -> tuple[int, Any]:
    """The pid that parsed, with what it parsed (module level: the worker gets it by name)."""
    return os.getpid(), _parse(raw, ctx)


def same(result: object) -> object:
    """Parsed messages compare as values; a reason or an exception by its text."""
    return repr(result) if isinstance(result, BaseException) else result


@pytest.fixture
def ctx(tmp_path: Path) -> ParseContext:
    """As the daemon's: attachments go to a blob store, which the worker writes to."""
    return ParseContext(
        own_addresses=frozenset({"support@example.com"}), store_blob=BlobStore(tmp_path).put
    )


@pytest.fixture
def ahead() -> Any:
    worker = ParseAhead()
    yield worker
    worker.close()


def worker_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.name == "postdesk-parse"}


def test_the_worker_parses_what_this_process_would_in_order(
    ctx: ParseContext, ahead: ParseAhead
) -> None:
    raws = corpus(60)
    items = [(raw, ctx) for raw in raws]
    results = list(ahead.parse_group(parsed_by, items))
    assert [same(r) for _, r in results] == [same(_parse(raw, ctx)) for raw, _ in items]
    pids = [pid for pid, _ in results]
    assert pids[0] == os.getpid(), "the first message is parsed here, before the write lock"
    (worker,) = worker_pids()
    assert pids[1:] == [worker] * (len(raws) - 1)


def test_large_messages_are_parsed_here(
    ctx: ParseContext, ahead: ParseAhead, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = corpus(6)
    large = max(range(1, 6), key=lambda i: len(raws[i]))
    monkeypatch.setattr(parse_ahead, "INLINE_BYTES", len(raws[large]) - 1)
    results = list(ahead.parse_group(parsed_by, [(raw, ctx) for raw in raws]))
    here = [i for i, (pid, _) in enumerate(results) if pid == os.getpid()]
    assert here == [0, large]


def test_a_worker_killed_mid_group_costs_no_message(
    ctx: ParseContext, ahead: ParseAhead, caplog: pytest.LogCaptureFixture
) -> None:
    raws = corpus(40)
    items = [(raw, ctx) for raw in raws]
    expected = [same(_parse(raw, ctx)) for raw, _ in items]
    results = ahead.parse_group(parsed_by, items)
    got = [next(results), next(results)]
    (worker,) = worker_pids()
    os.kill(worker, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="postdesk.ingest"):
        got += list(results)
    assert [same(r) for _, r in got] == expected
    assert got[-1][0] == os.getpid(), "what the dead worker did not answer is parsed here"
    assert "parse worker lost" in caplog.text
    again = list(ahead.parse_group(parsed_by, items[:5]))
    assert {pid for pid, _ in again[1:]} == worker_pids() != {worker}, "a new worker"


def test_a_hung_worker_is_killed_and_its_messages_parsed_here(
    ctx: ParseContext,
    ahead: ParseAhead,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(parse_ahead, "RESULT_WAIT", 0.5)
    ahead.start()
    (worker,) = worker_pids()
    os.kill(worker, signal.SIGSTOP)
    items = [(raw, ctx) for raw in corpus(10)]
    with caplog.at_level(logging.WARNING, logger="postdesk.ingest"):
        results = list(ahead.parse_group(parsed_by, items))
    assert [same(r) for _, r in results] == [same(_parse(raw, ctx)) for raw, _ in items]
    assert {pid for pid, _ in results} == {os.getpid()}
    assert any("TimeoutError" in getattr(r, "error", "") for r in caplog.records)
    assert worker not in worker_pids(), "the hung worker was killed and reaped"


def test_a_group_left_midway_does_not_answer_the_next(ctx: ParseContext, ahead: ParseAhead) -> None:
    raws = corpus(30)
    first = ahead.parse_group(parsed_by, [(raw, ctx) for raw in raws[:20]])
    next(first)
    next(first)
    first.close()  # as when the group's transaction failed
    items = [(raw, ctx) for raw in raws[20:]]
    results = list(ahead.parse_group(parsed_by, items))
    assert [same(r) for _, r in results] == [same(_parse(raw, ctx)) for raw, _ in items]
    assert len(worker_pids()) == 1, "the same worker serves on"


def test_a_group_parsed_ahead_commits_as_one_parsed_here(app: Any, ahead: ParseAhead) -> None:
    raws = [mail(sender=f"c{i}@example.org", subject=f"Question {i}").as_bytes() for i in range(12)]
    raws.insert(5, b"Subject: who sent this?\r\n\r\nno sender anywhere\r\n")
    outcomes = ingest_group(app, [Delivery(raw, "pipe") for raw in raws], ahead=ahead)
    assert all(isinstance(o, IngestResult) for o in outcomes)
    kinds = [o.outcome for o in outcomes if isinstance(o, IngestResult)]
    assert kinds == ["ticket_created"] * 5 + ["quarantined"] + ["ticket_created"] * 7
    numbers = [o.ticket_number for o in outcomes if isinstance(o, IngestResult)]
    assert numbers == [1, 2, 3, 4, 5, None, 6, 7, 8, 9, 10, 11, 12]
    assert len(worker_pids()) == 1


def test_no_worker_to_start_means_parsing_here_with_one_warning(
    ctx: ParseContext,
    ahead: ParseAhead,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_processes(method: str) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(multiprocessing, "get_context", no_processes)
    items = [(raw, ctx) for raw in corpus(8)]
    with caplog.at_level(logging.WARNING, logger="postdesk.ingest"):
        ahead.start()
        results = [r for _ in range(3) for r in ahead.parse_group(parsed_by, items)]
    assert [same(r) for _, r in results] == [same(_parse(raw, ctx)) for raw, _ in items] * 3
    assert {pid for pid, _ in results} == {os.getpid()}
    assert [r.getMessage() for r in caplog.records] == ["no parse worker; parsing here"]


def test_one_cpu_has_no_room_for_a_worker(ctx: ParseContext) -> None:
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        ahead = ParseAhead()
        items = [(raw, ctx) for raw in corpus(8)]
        results = list(ahead.parse_group(parsed_by, items))
        ahead.close()
    finally:
        os.sched_setaffinity(0, cpus)
    assert {pid for pid, _ in results} == {os.getpid()}
    assert worker_pids() == set()
