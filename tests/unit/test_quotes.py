"""The new part of replies from real mail clients (corpus fixtures) and from synthetic cases."""

from __future__ import annotations

import pytest

from postdesk.parsers.quotes import split_reply, strip_signature
from tests import replies
from tests.helpers import DATA

LOREM = "Fusce bibendum, quam hendrerit sagittis tempor"
LOREM_END = "Fusce sed odio id arcu varius aliquet nec nec nibh."
NEW = "Спасибо, всё заработало!"


def fixture(name: str) -> str:
    return (DATA / "corpus" / name).read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("email_russian", "привет"),
        ("email_russian", "John Doe <doe@example.com>"),
        ("email_german_outlook", "This is the original message content."),
        ("email_german_outlook", "Ursprüngliche Nachricht"),
        ("email_norwegian_gmail", "Ok. Thanks."),
        ("email_norwegian_gmail", "skrev Test user"),
        ("email_outlook_split_line_from", "Human Resources"),
        ("email_outlook_split_line_from", "Your company is really cool!"),
        ("email_french_2", "Chris - Crisp"),
        ("email_finnish", "kirjoitti"),
        ("email_finnish", "Thanks!"),
        ("email_danish_dash_separator", "Oprindelig besked"),
        ("email_ios_outlook", "Get Outlook for iOS"),
        ("email_ios_outlook", "The Hiring Engine"),
        ("email_ios_outlook_fr", "Etiam non sagittis orci"),
        ("email_msn", "Are you currently employed?"),
    ],
)
def test_client_quotes_are_cut(name: str, quoted: str) -> None:
    new = split_reply(fixture(f"crisp-email-reply-parser/{name}.eml"))
    assert new.startswith(LOREM)
    assert new.endswith(LOREM_END)
    assert quoted not in new


@pytest.mark.parametrize(
    ("name", "first", "absent"),
    [
        ("email_1_1", "Hi folks", None),
        ("email_1_3", "Oh thanks.", "Russell Brown"),
        ("email_1_3", "Oh thanks.", "riak-users mailing list"),
        ("email_1_5", "One: Here's what I've got.", None),
        ("email_2_1", "Outlook with a reply", "Google Apps Sync"),
        ("email_iPhone", "Here is another email", "Sent from my iPhone"),
        ("email_BlackBerry", "Here is another email", "Sent from my BlackBerry"),
        ("greedy_on", "On your remote host you can run:", "odd issue"),
        ("pathological", "I think you're onto something.", "John Sullivan"),
        ("pathological", "I think you're onto something.", "organism.sequence"),
    ],
)
def test_reply_fixtures(name: str, first: str, absent: str | None) -> None:
    new = split_reply(fixture(f"email_reply_parser/{name}.eml"))
    assert new.startswith(first)
    if absent:
        assert absent not in new


def test_short_replies_are_exact() -> None:
    assert split_reply(fixture("email_reply_parser/email_2_1.eml")) == "Outlook with a reply"
    assert split_reply(fixture("email_reply_parser/email_iPhone.eml")) == "Here is another email"
    new = split_reply(fixture("email_reply_parser/pathological.eml"))
    assert new.endswith("get back to a computer.")


def test_answers_between_quoted_lines_are_kept() -> None:
    new = split_reply(fixture("email_reply_parser/email_1_8.eml"))
    assert new.startswith("I will reply under this one")
    assert new.endswith("and under this.")
    assert "here's some stuff I can write" not in new
    assert "Hey there, this is my signature" not in new


def test_answer_below_a_quote_is_kept() -> None:
    new = split_reply(fixture("email_reply_parser/email_1_2.eml"))
    assert new.startswith("Hi,")
    assert "You can list the keys for the bucket" in new
    assert new.endswith('delete them all individually."')
    assert "What is the best way" not in new
    assert "riak-users mailing list" not in new


def test_long_quote_fixture_keeps_its_question() -> None:
    new = split_reply(fixture("email_reply_parser/email_long_quote.eml"))
    assert new.startswith("Hi folks")
    assert "I am currently using the Java HTTP API." in new
    assert "riak-users mailing list" not in new


def test_repeated_on_lines_are_not_attributions() -> None:
    text = fixture("crisp-email-reply-parser/email_21.eml")
    assert split_reply(text) == text.strip()


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 23 Nov 2026 at 10:00, Support Team <support@example.com> wrote:",
        "On Mon, 23 Nov 2026 at 10:00, Support Team\n<support@example.com> wrote:",
        "On Mon, 23 Nov 2026 at 10:00,\nSupport Team of ACME\n<support@example.com> wrote:",
        "On 23 Nov 2026, at 10:00, Support <support@example.com> wrote:",
        "Le lun. 23 nov. 2026 à 10:00, Support <support@example.com> a écrit :",
        "Am 23.11.2026 um 10:00 schrieb Support <support@example.com>:",
        "El lun, 23 nov 2026 a las 10:00, Support (<support@example.com>) escribió:",
        "Op ma 23 nov. 2026 om 10:00 schreef Support <support@example.com>:",
        "Den 23. nov. 2026 kl. 10.00 skrev Support <support@example.com>:",
        "ma 23. marrask. 2026 klo 10.00 Support <support@example.com> kirjoitti:",
        "23 нояб. 2026 г., в 10:00, Анна <a@b.ru>:",
        "пн, 23 нояб. 2026 г. в 10:00, Анна <anna@example.ru>:",
        "23.11.2026 10:00, Анна пишет:",
        "Анна Петрова написал(а):",
        "В понедельник Анна написала:",
        "-----Original Message-----\nFrom: support@example.com",
        "-------- Original Message --------",
        "-----Исходное сообщение-----",
        "From: Support <support@example.com>\nSent: Monday, 23 November 2026 10:00\nTo: Ann",
        "________________________________\nFrom: Support <support@example.com>\nSent: today",
        "От: Поддержка <support@example.com>\nОтправлено: 23 ноября 2026 г. 10:00\nКому: Анна",
        "De : Support <support@example.com>\nEnvoyé : lundi 23 novembre 2026\nÀ : Anne",
        "Von: Support <support@example.com>\nGesendet: Montag, 23. November 2026\nAn: Anna",
    ],
)
def test_attribution_styles(attribution: str) -> None:
    text = f"{NEW}\r\n\r\n{attribution}\r\n> old text\r\n> more\r\n"
    assert split_reply(text) == NEW


@pytest.mark.parametrize(
    "attribution",
    [
        "пн, 23 нояб. 2026 г. в 10:00, Анна <anna@example.ru>:",
        "On Mon, 23 Nov 2026 at 10:00, Support Team\n<support@example.com> wrote:",
        "From: Support <support@example.com>\nDate: 23 November 2026\nTo: Ann",
    ],
)
def test_quote_without_markers_is_cut(attribution: str) -> None:
    """Outlook and Gmail-on-mobile quote below the attribution without any ``>``."""
    text = f"{NEW}\n\n{attribution}\n\nThe old question, not quoted."
    assert split_reply(text) == NEW


@pytest.mark.parametrize(
    ("text", "new"),
    [
        ("It works.\n\n-- \nAnn\nACME Corp", "It works."),
        ("It works.\n--\nAnn", "It works."),
        ("It works.\n\nОтправлено с iPhone", "It works."),
        ("It works.\n\nSent from my BlackBerry", "It works."),
        ("It works.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "It works."),
        ("It works.\n\n-- \nAnn\n\nSent from my iPhone", "It works."),
    ],
)
def test_signature_and_mobile_footer_removed(text: str, new: str) -> None:
    assert split_reply(text) == new
    assert strip_signature(text) == new


def test_sentence_like_a_footer_is_kept() -> None:
    text = "Hello,\nSent from my account yesterday, nothing arrived."
    assert split_reply(text) == text


def test_text_without_quote_is_unchanged() -> None:
    text = "Hello,\n\nthe printer is on fire.\nOn Monday it was fine.\n\nAnn"
    assert split_reply(text) == text


def test_inline_quote_is_dropped_and_answers_kept() -> None:
    text = "Hello,\n\n> Which printer?\n\nThe one on floor 2.\n\n> Since when?\n\nMonday."
    assert split_reply(text) == "Hello,\n\n\nThe one on floor 2.\n\n\nMonday."


def test_wrapped_quote_line_is_still_a_quote() -> None:
    text = "Fixed, thanks.\n\n> a very long quoted line that the client\nrewrapped here\n> end"
    assert split_reply(text) == "Fixed, thanks."


@pytest.mark.parametrize(
    "sentence",
    ["Как я уже написал:", "As my colleague wrote:", "Jeg skrev til dere i går:"],
)
def test_own_sentence_ending_like_an_attribution_is_kept(sentence: str) -> None:
    text = f"Hello,\n\n{sentence}\n\nthe invoice is wrong."
    assert split_reply(text) == text


def test_all_quote_returns_the_whole_text() -> None:
    text = "> only a quote\n> nothing new"
    assert split_reply(text) == text
    attributed = "On Mon, 23 Nov 2026, Ann <ann@example.com> wrote:\n> only a quote"
    assert split_reply(attributed + "\n\n") == attributed


def test_crlf_is_normalised() -> None:
    text = "Line one.\r\nLine two.\r\n\r\n-- \r\nAnn\r\n"
    assert split_reply(text) == "Line one.\nLine two."


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Пересылаемое сообщение --------",
        "Begin forwarded message:",
    ],
)
def test_forward_is_not_a_quote(marker: str) -> None:
    text = (
        f"Please look at this.\n\n{marker}\nFrom: Bob <bob@example.com>\n"
        "Date: Mon, 23 Nov 2026 10:00\nSubject: Error\nTo: Ann <ann@example.com>\n\n"
        "On Mon, 23 Nov 2026 Carl <c@example.com> wrote:\n> trace\n\n-- \nBob"
    )
    assert split_reply(text) == text


def test_quote_above_a_forward_cuts_both() -> None:
    text = (
        "Thanks!\n\nOn Mon, 23 Nov 2026, Ann <ann@example.com> wrote:\n"
        "> see below\n>\n> ---------- Forwarded message ---------\n> From: Bob"
    )
    assert split_reply(text) == "Thanks!"


def test_pathological_fixture_finishes() -> None:
    text = fixture("email_reply_parser/pathological.eml") * 200
    assert split_reply(text).startswith("I think you're onto something.")


REPLIES = replies.load()
MISSED = {
    "replies/mail-parser-reply/begins_with_signature.txt": "the fixture is still quoted-printable "
    "('w=\\nrote:'); the MIME reader decodes that before the quote stripper sees it",
    "replies/mail-parser-reply/caution.txt": "a signature set off by a short line of underscores "
    "is kept: such lines also separate a writer's own text",
    "replies/mail-parser-reply/email_3_1.txt": "unquoted text below a quote is read as an inline "
    "answer, though here it is older history pasted by a ticket system",
    "replies/mail-parser-reply/email_pl_1_2.txt": "an Outlook header block at the very top makes "
    "the whole mail look quoted, so all of it is kept",
    "replies/talon/pattern_on_date_polymail.txt": "Polymail's attribution spreads over four "
    "lines with blank lines inside",
    "replies/talon/reply_and_quotation_splitter_share_line_1.txt": "the attribution starts in "
    "the middle of the writer's last line",
    "replies/talon/pattern_date_email_with_unicode.txt": "a dated line ending in an address "
    "without a colon is not taken for an attribution",
}


def test_reply_fixture_set_is_large_enough_and_licensed() -> None:
    assert len(REPLIES) >= 150
    assert all(r.source and r.licence for r in REPLIES)
    assert set(MISSED) <= {r.path for r in REPLIES}


def test_new_part_of_replies_is_found_in_95_percent() -> None:
    found, missed = replies.share(split_reply, REPLIES)
    assert found >= 0.95, [r.path for r in missed]


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(r, id=r.path, marks=[pytest.mark.xfail(strict=True, reason=MISSED[r.path])])
        if r.path in MISSED
        else pytest.param(r, id=r.path)
        for r in REPLIES
    ],
)
def test_reply_fixture(reply: replies.Reply) -> None:
    assert replies.normalise(split_reply(reply.text())) == replies.normalise(reply.expected())
