"""Raw messages that reached the disk but not the database are ingested at start.

Every message is written and fsynced to ``data_dir/raw/`` (its own file, or its group's
segment) before its transaction begins; a crash or power cut between the two leaves bytes
that no inbound row names, and so does a message of a group that failed alone. Nothing was
answered for it (the answer comes after the commit), so the sender may still retry; that
copy then finds the recovered message and is a duplicate. A message recovered from a
segment is ingested alone, so it gets its own file and reads back without the segment's
rows, which its group never committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.pipeline.result import IngestResult
from postdesk.store.inbound import known
from postdesk.store.raw import Part

log = logging.getLogger("postdesk.recover")

SOURCE = "recovered"
BATCH = 500
"""Keys asked of the database at once: few queries, and well below any bound-parameter limit."""


def recover(app: App) -> Iterator[tuple[str, IngestResult | None]]:
    """Ingest every raw message without a row, as of the time it reached the disk; None for
    one that failed (logged; its bytes stay for the next start), so one bad message never
    keeps the others, nor the daemon, from starting."""
    parts = app.raw.parts()
    while batch := {part.sha256: part for part in islice(parts, BATCH)}:
        with app.db.transaction() as session:
            missing = sorted(batch.keys() - known(session, batch.keys()))
        for sha256 in missing:
            yield sha256, _one(app, batch[sha256])


def _one(app: App, part: Part) -> IngestResult | None:
    sha256 = part.sha256
    try:
        result = ingest(app, part.read(), SOURCE, now=part.arrived())
    except Exception:
        log.exception(
            "raw message could not be recovered; tried again at the next start",
            extra={"sha256": sha256},
        )
        return None
    log.warning(
        "raw message without a database row recovered",
        extra={"sha256": sha256, "outcome": result.outcome, "ticket": result.ticket_number},
    )
    return result
