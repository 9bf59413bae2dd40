"""The whole real-world corpus through ingest: nothing lost, nothing crashes, no machine mail
answered. Runs on SQLite only: the database is not what this exercises."""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from postdesk.daemon.pipeline.ingest import ingest
from postdesk.store.models import Inbound
from tests.helpers import DATA
from tests.unit.test_parsers_corpus import DISAGREE

CORPUS = DATA / "corpus"
ROWS = list(csv.DictReader((CORPUS / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_corpus_is_kept_and_machine_mail_never_answered(app: Any) -> None:
    results = {
        r["path"]: ingest(app, (CORPUS / r["path"]).read_bytes(), "corpus", NOW) for r in ROWS
    }
    contents = {(CORPUS / r["path"]).read_bytes() for r in ROWS}
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Inbound)) == len(contents)
    for raw in contents:
        assert app.raw.path(hashlib.sha256(raw).hexdigest()).exists()
    for row in ROWS:
        result = results[row["path"]]
        if row["expected"] in ("suppress_autoreply", "ignore") and row["path"] not in DISAGREE:
            assert result.outcome in ("suppressed", "quarantined", "duplicate"), row["path"]
            assert result.queued_mail == 0, row["path"]
    outcomes = {r.outcome for r in results.values()}
    assert outcomes <= {"ticket_created", "appended", "duplicate", "quarantined", "suppressed"}
