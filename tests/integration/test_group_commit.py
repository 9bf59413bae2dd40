"""Several messages in one transaction: one that fails rolls back alone, the others commit
and are answered; their raw bytes share one segment and read back like any file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from postdesk.config.errors import TemporaryFailure
from postdesk.daemon.pipeline.ingest import Delivery, ingest_group
from postdesk.daemon.pipeline.recover import recover
from postdesk.daemon.pipeline.result import IngestResult
from postdesk.store.blobs import BlobStore
from postdesk.store.inbound import get_quarantined
from postdesk.store.models import Inbound, Outbox, Ticket
from tests.helpers import mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POISON = b"Subject: who sent this?\r\n\r\nno sender anywhere\r\n"
REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON inbound WHEN NEW.subject = 'Refused' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.subject = 'Refused' THEN "
        "RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'integrity_constraint_violation';"
        " END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE INSERT ON inbound FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}
"""A constraint the database enforces on one message of the group."""
ALLOW = {"sqlite": "DROP TRIGGER refuse", "postgresql": "DROP TRIGGER refuse ON inbound"}


def tickets(app: Any) -> dict[int, str]:
    with app.db.transaction() as session:
        return {t.number: t.subject for t in session.scalars(select(Ticket))}


def acknowledged(app: Any) -> list[int | None]:
    with app.db.transaction() as session:
        return sorted(
            row.ticket_id
            for row in session.scalars(select(Outbox).where(Outbox.kind == "autoreply"))
        )


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_one_bad_message_in_a_group_rolls_back_alone(app: Any) -> None:
    with app.db.transaction() as session:
        for statement in REFUSE[app.db.engine.dialect.name]:
            session.execute(text(statement))
    raws = [mail(subject=s).as_bytes() for s in ("First", "Refused", "Third")]
    first, refused, third = ingest_group(app, [Delivery(r, "smtp") for r in raws], NOW)
    assert isinstance(first, IngestResult) and isinstance(third, IngestResult)
    assert (first.outcome, third.outcome) == ("ticket_created", "ticket_created")
    assert (first.ticket_number, third.ticket_number) == (1, 2)  # #2 was rolled back, not lost
    assert isinstance(refused, TemporaryFailure) and "constraint violated" in str(refused)
    assert tickets(app) == {1: "First", 2: "Third"}
    assert len(acknowledged(app)) == 2
    assert [app.raw.get(sha(r)) for r in raws] == raws  # the refused one's bytes stay too

    with app.db.transaction() as session:
        session.execute(text(ALLOW[app.db.engine.dialect.name]))
    ((key, result),) = list(recover(app))  # the next start takes the one left behind
    assert key == sha(raws[1])
    assert result is not None and result.outcome == "ticket_created"
    assert tickets(app) == {1: "First", 2: "Third", 3: "Refused"}
    assert list(recover(app)) == []


def test_a_group_shares_one_segment_and_keeps_the_quarantined_bytes(app: Any) -> None:
    raws = [mail(subject="Segment one").as_bytes(), POISON, mail(subject="Segment two").as_bytes()]
    outcomes = ingest_group(app, [Delivery(r, "pipe") for r in raws], NOW)
    assert [o.outcome for o in outcomes if isinstance(o, IngestResult)] == [
        "ticket_created",
        "quarantined",
        "ticket_created",
    ]
    assert not any(app.raw.path(sha(r)).exists() for r in raws)  # no file per message
    (segment,) = (app.settings.data_dir / "raw" / "segments").glob("*.seg")
    assert all(r in segment.read_bytes() for r in raws)
    with app.db.transaction() as session:
        row = session.scalar(select(Inbound).where(Inbound.status == "quarantined"))
        assert row is not None and get_quarantined(session, row.id) is not None
    assert app.raw.get(row.sha256) == POISON
    assert app.raw.location(row.sha256).startswith(str(segment) + "@")
    again = ingest_group(app, [Delivery(r, "pipe") for r in raws], NOW)
    assert [o.outcome for o in again if isinstance(o, IngestResult)] == ["duplicate"] * 3
    assert len(tickets(app)) == 2


def test_an_old_installations_raw_files_stay_readable(app: Any) -> None:
    """What earlier versions wrote: a file per message under data_dir/raw/, and a row."""
    old = BlobStore(app.settings.data_dir / "raw", ".eml")
    old.put(POISON)
    with app.db.transaction() as session:
        session.add(
            Inbound(
                sha256=sha(POISON),
                source="smtp",
                size=len(POISON),
                received_at=NOW,
                status="quarantined",
                reason="no sender",
            )
        )
    assert app.raw.get(sha(POISON)) == POISON
    assert app.raw.location(sha(POISON)) == str(old.path(sha(POISON)))
    assert list(recover(app)) == []
    (outcome,) = ingest_group(app, [Delivery(POISON, "smtp")], NOW)
    assert isinstance(outcome, IngestResult) and outcome.outcome == "duplicate"


def test_a_segment_whose_transaction_never_committed_is_recovered(app: Any) -> None:
    raws = [mail(subject=f"Lost {i}").as_bytes() for i in range(3)]
    assert app.raw.put_group(raws) is not None  # the group's first step, alone: a power cut
    recovered = dict(recover(app))
    assert set(recovered) == {sha(r) for r in raws}
    assert all(r is not None and r.outcome == "ticket_created" for r in recovered.values())
    assert sorted(tickets(app).values()) == ["Lost 0", "Lost 1", "Lost 2"]
    assert [app.raw.get(sha(r)) for r in raws] == raws
    assert list(recover(app)) == []
