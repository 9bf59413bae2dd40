"""Raw messages that reached the disk but not the database are ingested at start.

Every message is written and fsynced to ``data_dir/raw/`` before its transaction begins; a
crash or power cut between the two leaves a file that no inbound row names. Nothing was
answered for it (the answer comes after the commit), so the sender may still retry; that
copy then finds the recovered message and is a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.pipeline.result import IngestResult
from postdesk.store.inbound import known

log = logging.getLogger("postdesk.recover")

SOURCE = "recovered"
BATCH = 500
"""Keys asked of the database at once: few queries, and well below any bound-parameter limit."""


def recover(app: App) -> Iterator[tuple[str, IngestResult | None]]:
    """Ingest every raw file without a row, as of the time it reached the disk; None for one
    that failed (logged; its file stays for the next start), so one bad file never keeps the
    others, nor the daemon, from starting."""
    keys = app.raw.stored()
    while batch := set(islice(keys, BATCH)):
        with app.db.transaction() as session:
            missing = sorted(batch - known(session, batch))
        for sha256 in missing:
            yield sha256, _one(app, sha256)


def _one(app: App, sha256: str) -> IngestResult | None:
    path = app.raw.path(sha256)
    try:
        arrived = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        result = ingest(app, path.read_bytes(), SOURCE, now=arrived)
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
