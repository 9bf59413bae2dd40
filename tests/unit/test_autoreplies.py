"""Acknowledgement wording, templates, composition and the suppression policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from postdesk.autoreplies.policy import History, decide
from postdesk.autoreplies.render import SAMPLE, Rendered, Templates, compose, thread_references
from postdesk.autoreplies.wording import response_time
from postdesk.config.errors import ConfigError
from postdesk.config.schema import Autoreply
from postdesk.parsers.model import Kind
from tests.helpers import inbound

OWN = frozenset({"support@example.com"})


def variables(**overrides: Any) -> dict[str, Any]:
    values = {**SAMPLE, "ticket": {**SAMPLE["ticket"], "number": 17, "subject": "Printer"}}
    values.update(channels=[], links=[], customer_name="Ann")
    values.update(overrides)
    return values


def verdict(msg: Any = None, **overrides: Any) -> tuple[bool, str]:
    history = History(**overrides.pop("history", {}))
    limits = Autoreply(**overrides.pop("limits", {}))
    args: dict[str, Any] = {
        "own_addresses": OWN,
        "history": history,
        "limits": limits,
        "is_new_ticket": True,
        "when": "always",
        "loop_marker": "support@example.com",
    }
    args.update(overrides)
    result = decide(msg or inbound(), **args)
    return result.send, result.reason


@pytest.mark.parametrize(
    ("duration", "language", "text"),
    [
        (timedelta(minutes=30), "en", "30 minutes"),
        (timedelta(hours=1), "en", "1 hour"),
        (timedelta(hours=8), "en", "8 hours"),
        (timedelta(days=1), "en", "24 hours"),
        (timedelta(days=5), "en", "5 days"),
        (timedelta(hours=1), "ru", "1 час"),
        (timedelta(hours=2), "ru", "2 часа"),
        (timedelta(hours=5), "ru", "5 часов"),
        (timedelta(hours=21), "ru", "21 час"),
        (timedelta(days=3), "ru", "3 дня"),
        (timedelta(days=10), "ru", "10 дней"),
        (timedelta(minutes=90), "ru", "90 минут"),
    ],
)
def test_response_time_plurals(duration: timedelta, language: str, text: str) -> None:
    assert response_time(duration, language) == text


def test_ack_in_english_and_russian() -> None:
    templates = Templates(None)
    assert templates.names() == {"ack", "ack_offhours", "closed", "reminder"}
    assert templates.check() == []
    en = templates.render("ack", "en", variables())
    assert en.subject == "[#17] Printer"
    assert "ticket #17" in en.text and "within 8 hours" in en.text
    assert "urgent" not in en.text and en.html is None
    ru = templates.render("ack", "ru", variables(response_time="8 часов", customer_name=""))
    assert ru.subject == "[#17] Printer" and ru.text.startswith("Здравствуйте!")
    assert "номером #17" in ru.text and "8 часов" in ru.text and "срочный" not in ru.text
    urgent = variables(channels=[{"name": "Телефон", "value": "+7 495 000-00-00"}])
    assert "Если вопрос срочный:\n  - Телефон: +7 495 000-00-00" in (
        templates.render("ack", "ru", urgent).text
    )


def test_channels_links_and_html() -> None:
    rendered = Templates(None).render(
        "ack",
        "en",
        variables(
            channels=[{"name": "Phone", "value": "+7 495 000-00-00"}],
            links=[{"title": "Reset <password>", "url": "https://help.example.com/p"}],
        ),
        html=True,
    )
    assert "If the problem is urgent" in rendered.text and "+7 495 000-00-00" in rendered.text
    assert "Reset <password>: https://help.example.com/p" in rendered.text
    assert rendered.html is not None
    assert "Reset &lt;password&gt;" in rendered.html


def test_missing_language_falls_back_to_english(tmp_path: Path) -> None:
    (tmp_path / "vip.en.txt").write_text("Subject: Got it [#{{ ticket.number }}]\n\nThanks\n")
    rendered = Templates(tmp_path).render("vip", "ru", variables())
    assert rendered.subject == "Got it [#17]"


def test_override_folder_wins_and_unknown_template_fails(tmp_path: Path) -> None:
    (tmp_path / "ack.ru.txt").write_text("Subject: Принято [#{{ ticket.number }}]\n\nСпасибо\n")
    (tmp_path / "vip.en.txt").write_text("Subject: VIP\n\nHello\n")
    templates = Templates(tmp_path)
    assert templates.names() == {"ack", "ack_offhours", "closed", "reminder", "vip"}
    assert templates.render("ack", "ru", variables()).text == "Спасибо\n"
    with pytest.raises(ConfigError, match="no template 'nope'"):
        templates.render("nope", "en", variables())


def test_check_reports_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ack.en.txt").write_text("Subject: x\n\nHello\n{{ ticket.number }\n")
    (tmp_path / "ack.ru.txt").write_text("Subject: x\n\nHello\n\n{{ no_such_variable }}\n")
    problems = Templates(tmp_path).check()
    assert any(p.startswith(f"{tmp_path / 'ack.en.txt'}:4:") for p in problems), problems
    assert any(
        p.startswith(f"{tmp_path / 'ack.ru.txt'}:5:") and "no_such_variable" in p for p in problems
    ), problems


def test_check_finds_typos_in_branches_the_sample_skips(tmp_path: Path) -> None:
    (tmp_path / "ack.en.txt").write_text(
        "Subject: x\n\n{% if not links %}\n{{ ticket.number }} {{ linkz }}\n{% endif %}\n"
    )
    (tmp_path / "ack.ru.txt").write_text("Тема: x\n\nПривет\n")
    assert Templates(tmp_path).check() == [
        f"{tmp_path / 'ack.en.txt'}:4: 'linkz' is undefined",
        f"{tmp_path / 'ack.ru.txt'}:1: the first line must be 'Subject: ...'",
    ]


def compose_ack(rendered: Rendered) -> Any:
    mail = compose(
        rendered,
        from_addr="support@example.com",
        to="ann@example.org",
        message_id="pd.t1xabc.1@example.com",
        date=datetime(2026, 11, 23, 10, tzinfo=UTC),
        in_reply_to="m2@example.org",
        references=["m1@example.org"],
        auto_submitted="auto-replied",
        loop_marker="support@example.com",
        extra_headers={"Reply-To": "support+t1xabc@example.com"},
    )
    return message_from_bytes(mail.content, policy=policy.default)


def test_composed_mail_threads_and_stops_loops() -> None:
    mail = compose_ack(Rendered("[#1] Printer", "Thanks\n"))
    assert mail["In-Reply-To"] == "<m2@example.org>"
    assert mail["References"] == "<m1@example.org> <m2@example.org>"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["X-Postdesk-Loop"] == "support@example.com"
    assert mail["Reply-To"] == "support+t1xabc@example.com"
    assert mail.get_content_type() == "text/plain"
    both = compose_ack(Rendered("s", "text\n", "<p>text</p>"))
    assert both.get_content_type() == "multipart/alternative"


def test_references_end_with_the_parent_and_keep_the_root() -> None:
    assert thread_references(["a", "b", "a", ""], "a") == ["b", "a"]
    assert thread_references([], None) == []
    long = thread_references([f"m{i}" for i in range(30)], "parent")
    assert len(long) == 20 and long[:2] == ["m0", "m12"] and long[-2:] == ["m29", "parent"]


def test_russian_html_ack_is_utf8_alternative() -> None:
    rendered = Templates(None).render("ack", "ru", variables(), html=True)
    mail = compose_ack(rendered)
    assert mail.get_content_type() == "multipart/alternative"
    text, page = mail.get_payload()
    assert text.get_content_charset() == page.get_content_charset() == "utf-8"
    assert "Спасибо за обращение" in text.get_content()
    assert "<b>#17</b>" in page.get_content()


def test_subject_cannot_inject_headers() -> None:
    mail = compose_ack(Rendered("Hi\r\nBcc: evil@example.net\nX-Evil: 1", "body\n"))
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert mail["Subject"] == "Hi Bcc: evil@example.net X-Evil: 1"


@pytest.mark.parametrize(
    "subject",
    [
        "Re: =?utf-8?b?broken base64?=\U000516fe\u00d5",
        ("Счёт №5 " * 20).strip(),
        "[#3] ñ =?x?q?y?=",
    ],
)
def test_any_subject_is_encoded_and_reads_back_the_same(subject: str) -> None:
    assert compose_ack(Rendered(subject, "body\n"))["Subject"] == subject


def test_plain_customer_mail_gets_a_reply() -> None:
    assert verdict() == (True, "")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": Kind.BOUNCE, "kind_reason": "delivery status notification"}, "bounce mail"),
        ({"kind": Kind.AGENT, "kind_reason": "configured agent"}, "agent mail: configured agent"),
        ({"from_addr": ""}, "no sender address"),
        ({"from_addr": "support+x@example.com"}, "our own address"),
        ({"from_addr": "support@example.com"}, "our own address"),
        ({"return_path": ""}, "null return path"),
        ({"from_addr": "no-reply@shop.example"}, "does not read replies"),
        ({"from_addr": "mailer-daemon@mx.example.org"}, "does not read replies"),
        ({"from_addr": "bounces+x=y@list.example"}, "does not read replies"),
        ({"from_addr": "listserv@list.example"}, "does not read replies"),
        ({"headers": {"auto-submitted": "Auto-Replied; owner-email=x"}}, "auto-replied"),
        ({"headers": {"x-autorespond": "1"}}, "x-autorespond"),
        ({"headers": {"x-auto-response-suppress": "All"}}, "X-Auto-Response-Suppress: All"),
        ({"headers": {"precedence": "list"}}, "Precedence: list"),
        ({"headers": {"precedence": "Junk"}}, "Precedence: junk"),
        ({"headers": {"precedence": "auto_reply"}}, "Precedence: auto_reply"),
        ({"headers": {"list-unsubscribe": "<mailto:u@x>"}}, "mailing list (list-unsubscribe)"),
        ({"headers": {"list-post": "NO"}}, "mailing list (list-post)"),
        ({"headers": {"x-postdesk-loop": "other-desk"}}, "loop marker"),
        ({"headers": {"auto-submitted": "auto-generated"}}, "Auto-Submitted: auto-generated"),
        ({"headers": {"x-autoreply": "yes"}}, "x-autoreply"),
        ({"headers": {"x-auto-response-suppress": "OOF, AutoReply"}}, "X-Auto-Response-Suppress"),
        ({"headers": {"precedence": "bulk"}}, "Precedence: bulk"),
        ({"headers": {"list-id": "<x.example.org>"}}, "mailing list"),
        ({"headers": {"x-loop": "support@example.com"}}, "loop marker"),
    ],
)
def test_suppression_reasons(fields: dict[str, Any], reason: str) -> None:
    send, why = verdict(inbound(**fields))
    assert not send
    assert reason in why


def test_auto_submitted_no_is_a_human() -> None:
    assert verdict(inbound(headers={"auto-submitted": "no"})) == (True, "")


def test_rate_limits_suppression_and_breaker() -> None:
    assert "rate limit: 5 automatic replies" in verdict(history={"to_sender_last_day": 5})[1]
    assert "on this ticket" in verdict(history={"for_ticket_last_hour": 2})[1]
    assert verdict(history={"for_ticket_last_hour": 2}, limits={"max_per_ticket_per_hour": 3})[0]
    assert "address suppressed: hard bounce" in verdict(history={"suppressed": "hard bounce"})[1]
    tripped = decide(
        inbound(),
        own_addresses=OWN,
        history=History(total_last_hour=2000),
        limits=Autoreply(),
        is_new_ticket=True,
        when="always",
    )
    assert (tripped.send, tripped.breaker) == (False, "total")
    assert "circuit breaker" in tripped.reason


def test_follow_ups_and_modes() -> None:
    assert "follow-up" in verdict(is_new_ticket=False)[1]
    assert verdict(is_new_ticket=False, limits={"on_followup": True}) == (True, "")
    assert "switched off" in verdict(when="never")[1]
    assert (
        "within business hours" in verdict(when="outside_business_hours", in_business_hours=True)[1]
    )
    assert verdict(when="outside_business_hours", in_business_hours=False) == (True, "")
