"""The new part of replies from real mail clients (corpus fixtures) and from synthetic cases."""

from __future__ import annotations

import pytest

from parsers.quotes import split_reply
from tests.helpers import DATA

LOREM = "Fusce bibendum, quam hendrerit sagittis tempor"
LOREM_END = "Fusce sed odio id arcu varius aliquet nec nec nibh."


def fixture(name: str) -> str:
    return (DATA / "corpus" / name).read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("crisp-email-reply-parser/email_russian.eml", "привет"),
        ("crisp-email-reply-parser/email_german_outlook.eml", "original message content"),
        ("crisp-email-reply-parser/email_norwegian_gmail.eml", "Ok. Thanks."),
        ("crisp-email-reply-parser/email_outlook_split_line_from.eml", "Human Resources"),
        ("crisp-email-reply-parser/email_french_2.eml", "a écrit"),
        ("crisp-email-reply-parser/email_finnish.eml", "kirjoitti"),
        ("crisp-email-reply-parser/email_danish_dash_separator.eml", "Oprindelig"),
        ("crisp-email-reply-parser/email_ios_outlook.eml", "From:"),
        ("crisp-email-reply-parser/email_ios_outlook_fr.eml", "De :"),
        ("crisp-email-reply-parser/email_msn.eml", "From:"),
    ],
)
def test_client_quotes_are_cut(name: str, quoted: str) -> None:
    new = split_reply(fixture(name))
    assert new.startswith(LOREM)
    assert new.endswith(LOREM_END)
    assert quoted not in new


@pytest.mark.parametrize(
    ("name", "first", "absent"),
    [
        ("email_reply_parser/email_1_1.eml", "Hi folks", None),
        ("email_reply_parser/email_1_3.eml", "Oh thanks.", "Hi folks"),
        ("email_reply_parser/email_2_1.eml", "Outlook with a reply", "Google Apps Sync"),
        ("email_reply_parser/email_iPhone.eml", "Here is another email", "Sent from my iPhone"),
        ("email_reply_parser/email_BlackBerry.eml", "Here is another email", "BlackBerry"),
        ("email_reply_parser/greedy_on.eml", "On your remote host you can run:", "odd issue"),
        ("email_reply_parser/pathological.eml", "I think you're onto something.", ">"),
    ],
)
def test_reply_fixtures(name: str, first: str, absent: str | None) -> None:
    new = split_reply(fixture(name))
    assert new.startswith(first)
    if absent:
        assert absent not in new


def test_answers_between_quoted_lines_are_kept() -> None:
    new = split_reply(fixture("email_reply_parser/email_1_8.eml"))
    assert new.startswith("I will reply under this one")
    assert "and under this." in new
    assert "here's some stuff I can write" not in new


def test_answer_below_a_quote_is_kept() -> None:
    new = split_reply(fixture("email_reply_parser/email_1_2.eml"))
    assert new.startswith("Hi,")
    assert "You can list the keys for the bucket" in new
    assert "What is the best way" not in new


def test_long_quote_fixture_keeps_its_question() -> None:
    new = split_reply(fixture("email_reply_parser/email_long_quote.eml"))
    assert new.startswith("Hi folks")


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 23 Nov 2026 at 10:00, Support Team <support@example.com> wrote:",
        "On Mon, 23 Nov 2026 at 10:00, Support Team\n<support@example.com> wrote:",
        "пн, 23 нояб. 2026 г. в 10:00, Анна <anna@example.ru>:",
        "23.11.2026 10:00, Анна пишет:",
        "Анна Петрова написал(а):",
        "-----Original Message-----\nFrom: support@example.com",
        "-----Исходное сообщение-----",
        "From: Support <support@example.com>\nSent: Monday, 23 November 2026 10:00\nTo: Ann",
        "От: Поддержка <support@example.com>\nОтправлено: 23 ноября 2026 г. 10:00\nКому: Анна",
    ],
)
def test_attribution_styles(attribution: str) -> None:
    text = f"Спасибо, всё заработало!\r\n\r\n{attribution}\r\n> old text\r\n> more\r\n"
    assert split_reply(text) == "Спасибо, всё заработало!"


def test_signature_and_mobile_footer_removed() -> None:
    assert split_reply("It works.\n\n-- \nAnn\nACME Corp") == "It works."
    assert split_reply("It works.\n\nОтправлено с iPhone") == "It works."


def test_text_without_quote_is_unchanged() -> None:
    text = "Hello,\n\nthe printer is on fire.\n> not a quote, an answer follows\nreally"
    assert split_reply(text) == text


def test_all_quote_returns_the_whole_text() -> None:
    text = "> only a quote\n> nothing new"
    assert split_reply(text) == text


def test_forward_is_not_a_quote() -> None:
    text = "Please look at this.\n\n-------- Forwarded Message --------\nSubject: Error\n\nTrace"
    assert split_reply(text) == text
