"""Two brands on one desk: every mail about a ticket speaks from the address it came in on,
under that brand's name, in its language, with its templates and signature."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select

from postdesk.daemon.app import App
from postdesk.daemon.pipeline.ingest import ingest
from postdesk.daemon.runners.sender import deliver_due
from postdesk.daemon.sweeps.run import run
from postdesk.store.models import Outbox
from postdesk.store.tickets import load_ticket
from tests.conftest import Sink
from tests.helpers import brand2_templates, mail, parse_mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ANNA = "anna@example.com"
BRAND2 = "help@brand2.example"


def desk(open_app: Callable[..., App], tmp_path: Path) -> App:
    templates = brand2_templates(tmp_path / "brand2-templates")
    return open_app(
        support_addresses=[
            "support@example.com",
            {
                "address": "Help@Brand2.example",
                "name": "Brand2 Help",
                "language": "ru",
                "templates": str(templates),
                "signature": "Команда Brand2",
            },
        ],
        agents=[{"email": ANNA, "name": "Anna", "queues": ["general"]}],
        notify={"new_ticket": True, "customer_reply": True},
        business_hours={"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
    )


def sent(app: App, kind: str) -> list[EmailMessage]:
    with app.db.transaction() as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))
        return [parse_mail(r.content) for r in rows]


def addr(message: EmailMessage, field: str) -> str:
    return str(message[field].addresses[0].addr_spec)


def domain_of(message_id: Any) -> str:
    return str(message_id).strip("<>").rpartition("@")[2]


def test_every_mail_of_a_ticket_speaks_from_its_brand(
    open_app: Callable[..., App], tmp_path: Path
) -> None:
    app = desk(open_app, tmp_path)
    ingest(app, mail(to="help@brand2.example", body="Принтер горит").as_bytes(), "smtp", NOW)
    ingest(app, mail(sender="bob@example.org", subject="Other").as_bytes(), "smtp", NOW)
    ack2, ack1 = sent(app, "autoreply")
    assert str(ack2["From"]) == f"Brand2 Help <{BRAND2}>"
    assert "Brand2 получил обращение #1" in ack2.get_content()  # the brand's own template
    assert addr(ack2, "Reply-To").endswith("@brand2.example")
    assert domain_of(ack2["Message-ID"]) == "brand2.example"
    assert str(ack1["From"]) == "support@example.com"
    assert addr(ack1, "Reply-To").endswith("@example.com")

    notice = next(n for n in sent(app, "agent_notification") if "[#1]" in str(n["Subject"]))
    assert addr(notice, "Reply-To").startswith("help+a") and addr(notice, "Reply-To").endswith(
        "@brand2.example"
    )
    assert domain_of(notice["Message-ID"]) == "brand2.example"
    answer = mail(
        sender=f"Anna <{ANNA}>",
        to=str(notice["Reply-To"]),
        subject=f"Re: {notice['Subject']}",
        body="Выключите его, пожалуйста.",
    )
    ingest(app, answer.as_bytes(), "smtp", NOW + timedelta(minutes=5))
    (relay,) = sent(app, "agent_reply")
    (sender,) = relay["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Anna (Brand2 Help)", BRAND2)
    assert relay["To"] == "ann@example.org"
    assert addr(relay, "Reply-To").endswith("@brand2.example")
    assert domain_of(relay["Message-ID"]) == "brand2.example"
    assert relay.get_content().rstrip().endswith("Команда Brand2")

    run(app, NOW + timedelta(days=2, minutes=5))
    (reminder,) = sent(app, "reminder")
    assert str(reminder["From"]) == f"Brand2 Help <{BRAND2}>"
    assert "[#1]" in str(reminder["Subject"])
    run(app, NOW + timedelta(days=4, minutes=10))
    run(app, NOW + timedelta(days=6, minutes=15))
    (closing,) = sent(app, "survey")
    assert str(closing["From"]) == f"Brand2 Help <{BRAND2}>"
    links = [unquote(x) for x in re.findall(r"mailto:(\S+)", closing.get_content())]
    assert links and all(link.split("?")[0].endswith("@brand2.example") for link in links)
    assert "закрыто" in closing.get_content()  # the brand's language


def test_a_brands_mail_leaves_with_the_brands_envelope_sender(
    open_app: Callable[..., App], smtp_sink: tuple[Sink, int]
) -> None:
    sink, port = smtp_sink
    app = open_app(
        support_addresses=["support@example.com", {"address": BRAND2, "name": "Brand2 Help"}],
        outgoing={"smtp": {"host": "127.0.0.1", "port": port, "security": "none"}},
    )
    ingest(app, mail(to=BRAND2).as_bytes(), "smtp", NOW)
    ingest(app, mail(sender="bob@example.org").as_bytes(), "smtp", NOW)
    deliver_due(app, NOW)
    sink.wait_for(2)
    assert sorted((frm, to) for frm, to, _ in sink.messages) == [
        (BRAND2, ["ann@example.org"]),
        ("support@example.com", ["bob@example.org"]),
    ]


def test_a_blind_copy_makes_nobody_in_to_or_cc_a_participant(
    open_app: Callable[..., App],
) -> None:
    app = open_app(
        support_addresses=["support@example.com", {"address": BRAND2, "name": "Brand2 Help"}],
    )
    bcc = mail(to="Colleague <colleague@example.org>", Cc="boss@example.org")
    result = ingest(app, bcc.as_bytes(), "smtp", NOW, envelope_to=(BRAND2,))
    assert result.outcome == "ticket_created"
    plain = mail(sender="bob@example.org", Cc="bobs-boss@example.org")
    ingest(app, plain.as_bytes(), "smtp", NOW, envelope_to=("support@example.com",))
    with app.db.transaction() as session:
        first, second = (load_ticket(session, n) for n in ("1", "2"))
        assert first is not None and second is not None
        assert [p.email for p in first.participants] == ["ann@example.org"]
        assert first.brand == BRAND2  # the address it was delivered to
        assert "bobs-boss@example.org" in [p.email for p in second.participants]
    ack = next(a for a in sent(app, "autoreply") if a["To"] == "ann@example.org")
    assert ack["Cc"] is None and addr(ack, "From") == BRAND2


def test_a_template_added_to_a_brands_folder_is_a_change_the_daemon_reloads_for(
    open_app: Callable[..., App], tmp_path: Path
) -> None:
    """Templates list their folders once per load, so an added or removed template (a
    brand's, a snippet) must change what the daemon watches, which reloads them."""
    app = desk(open_app, tmp_path)
    folder = tmp_path / "brand2-templates"
    before = app.watched_files()
    assert str(folder / "ack.ru.txt") in before
    (folder / "snippets").mkdir()
    (folder / "snippets" / "reset.ru.txt").write_text("Сбросьте пароль.\n", encoding="utf-8")
    after = app.watched_files()
    assert str(folder / "snippets" / "reset.ru.txt") in after and after != before
