"""Routing rules from real YAML files: matching, actions, the dry run and load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.config.errors import ConfigError
from postdesk.config.loader import EXAMPLE_DIR
from postdesk.parsers.model import Attachment
from postdesk.rules.engine import evaluate
from postdesk.rules.explain import diff, explain, explain_json
from postdesk.rules.loader import load_rules
from postdesk.rules.matchers import Context
from postdesk.rules.model import RuleSet
from tests.helpers import inbound

QUEUES = {"general", "billing", "ops"}
AGENTS = {"anna@example.com", "boris@example.com"}


def load(tmp_path: Path, text: str, **known: set[str]) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path, **known)


def message(subject: str = "Hello", body: str = "Hello there", **fields: object) -> object:
    return inbound(subject=subject, new_text=body, text=body, **fields)


@pytest.fixture
def example() -> RuleSet:
    return load_rules(EXAMPLE_DIR / "rules.yaml", queues=QUEUES, templates={"ack"}, agents=AGENTS)


@pytest.mark.parametrize(
    ("subject", "body", "queue", "priority", "language"),
    [
        (
            "Invoice 2026-11 is wrong",
            "The amount is twice what we agreed.",
            "billing",
            "normal",
            "en",
        ),
        (
            "Вопрос по оплате",
            "Здравствуйте! Прошу вернуть деньги за счёт.",
            "billing",
            "normal",
            "ru",
        ),
        ("Site is down", "Every page answers with an error since ten.", "ops", "urgent", "en"),
        ("Сайт недоступен", "С утра ничего не открывается, помогите.", "ops", "urgent", "ru"),
        ("Question about the API", "How do I list my orders?", "general", "normal", "en"),
    ],
)
def test_example_rules_route_english_and_russian(
    example: RuleSet, subject: str, body: str, queue: str, priority: str, language: str
) -> None:
    decision = evaluate(example, message(subject, body))
    assert (decision.queue, decision.priority, decision.language) == (queue, priority, language)
    assert decision.autoreply == "ack"


def test_example_outage_by_body_words(example: RuleSet) -> None:
    decision = evaluate(example, message("Hi", "Every page shows error 500 since ten"))
    assert (decision.queue, decision.priority, decision.tags) == ("ops", "urgent", ("outage",))


def test_assignee_names_an_agent_in_any_case(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "rules:\n  - {name: ops, if: {subject: [down]}, then: {assignee: Boris@Example.com}}\n",
        agents=AGENTS,
    )
    assert evaluate(rules, message("Site down")).assignee == "boris@example.com"


def test_example_self_help_link_and_newsletter(example: RuleSet) -> None:
    help_ = evaluate(example, message("Забыл пароль", "Не могу войти в кабинет"))
    assert [link.url for link in help_.links] == ["https://help.example.com/password"]
    news = evaluate(example, message("Our news", "To unsubscribe click here"))
    assert news.autoreply is None
    assert news.autoreply_reason == "rule 'newsletters': autoreply: none"
    assert news.matched == ("newsletters",)


KEYWORDS = """
rules:
  - name: outage
    if: {subject: [down, "недоступ"]}
    then: {queue: ops}
"""


@pytest.mark.parametrize(
    ("subject", "hit"),
    [
        ("Server down", True),
        ("DOWNTIME tonight", True),
        ("Sundown party", False),
        ("Сервис недоступен", True),
        ("Сервис НЕДОСТУПНА", True),
        ("доступ недоступ", True),
        ("Нет доступа", False),
    ],
)
def test_keywords_match_at_word_start_ignoring_case(
    tmp_path: Path, subject: str, hit: bool
) -> None:
    rules = load(tmp_path, KEYWORDS)
    assert (evaluate(rules, message(subject)).queue == "ops") is hit


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Здравствуйте, не проходит оплата", "ru"),
        ("Invoice INV-2026-11 не оплачен, помогите разобраться", "ru"),
        ("The invoice for November is wrong", "en"),
        ("ok +1", None),
        ("Χαίρετε, το τιμολόγιο είναι λάθος", None),
    ],
)
def test_language_from_the_letters(tmp_path: Path, text: str, language: str | None) -> None:
    rules = load(tmp_path, "rules: []\n")
    assert evaluate(rules, message("", text)).language == language


def test_defaults_can_switch_the_acknowledgement_off(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "defaults: {autoreply: none}\nrules:\n  - {name: vip, if: {subject: [vip]}, "
        "then: {autoreply: ack}}\n",
        templates={"ack"},
    )
    plain = evaluate(rules, message())
    assert (plain.autoreply, plain.autoreply_reason) == (None, "defaults: autoreply: none")
    assert evaluate(rules, message("VIP customer")).autoreply == "ack"


def test_yo_and_ye_are_the_same_letter(tmp_path: Path) -> None:
    rules = load(
        tmp_path, "rules:\n  - name: b\n    if: {subject: [счёт]}\n    then: {queue: billing}\n"
    )
    assert evaluate(rules, message("Неверный счет")).queue == "billing"


COMBINED = """
rules:
  - name: combo
    if:
      all:
        - any: [{subject: [refund]}, {body: {regex: "order #\\\\d+"}}]
        - not: {from: {domain: example.org}}
        - body: {all: [card, charged]}
    then: {queue: billing, tags: [refund]}
"""


def test_all_any_not_and_regex(tmp_path: Path) -> None:
    rules = load(tmp_path, COMBINED)
    body = "My card was charged twice for order #123"
    assert evaluate(rules, message("Hi", body, from_addr="ann@shop.example")).queue == "billing"
    assert evaluate(rules, message("Hi", body, from_addr="ann@example.org")).queue == "general"
    assert evaluate(rules, message("Hi", "my card", from_addr="x@shop.example")).queue == "general"


FIELDS = """
rules:
  - name: header
    if: {header: {name: X-Priority, exact: "1"}}
    then: {priority: high}
  - name: pdf
    if: {attachment: {regex: "\\\\.pdf$|application/pdf"}}
    then: {tags: [pdf]}
  - name: partner
    if: {to: {domain: partners.example.com}}
    then: {tags: [partner]}
  - name: russian
    if: {language: ru}
    then: {tags: [ru]}
"""


def test_header_attachment_address_and_language(tmp_path: Path) -> None:
    rules = load(tmp_path, FIELDS)
    msg = message(
        "Счёт за ноябрь",
        "Добрый день, пришлите, пожалуйста, акт сверки",
        headers={"x-priority": "1"},
        attachments=(Attachment("scan.pdf", "application/pdf", 10, "0" * 64),),
        to=("help@partners.example.com",),
    )
    decision = evaluate(rules, msg)
    assert decision.priority == "high"
    assert decision.tags == ("pdf", "partner", "ru")
    assert decision.matched == ("header", "pdf", "partner", "russian")


def test_later_hits_override_and_stop_ends_the_walk(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
rules:
  - {name: first, then: {queue: billing, tags: [a]}}
  - {name: second, then: {queue: ops, tags: [b]}, stop: true}
  - {name: third, then: {queue: general, tags: [c]}}
""",
    )
    decision = evaluate(rules, message())
    assert (decision.queue, decision.tags, decision.matched) == (
        "ops",
        ("a", "b"),
        ("first", "second"),
    )


def test_spam_and_defaults(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
defaults: {queue: ops, priority: low, autoreply: ack}
rules:
  - name: spam
    if: {subject: {any: [viagra]}}
    then: {spam: true}
""",
    )
    assert evaluate(rules, message("Cheap VIAGRA")).spam
    plain = evaluate(rules, message())
    assert (plain.queue, plain.priority, plain.spam) == ("ops", "low", False)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("rules:\n  - name: x\n    then: {queue: nowhere}\n", 3, "unknown queue 'nowhere'"),
        ("rules:\n  - name: x\n    then: {autoreply: missing}\n", 3, "unknown autoreply"),
        ("rules:\n  - name: x\n    then: {assignee: eve@example.com}\n", 3, "unknown assignee"),
        (
            "rules:\n  - name: x\n    if: {subject: {regex: '(unclosed'}}\n    then: {}\n",
            3,
            "bad regular expression",
        ),
        ("rules:\n  - name: x\n    iff: {subject: a}\n    then: {}\n", 3, "unknown key"),
        ("rules:\n  - name: x\n    if: {subject: a, body: b}\n    then: {}\n", 3, "exactly one"),
        ("rules:\n  - name: x\n    then: {queue: ops\n", 4, "YAML syntax error"),
        ("rules:\n  - {name: x, then: {}}\n  - {name: x, then: {}}\n", 3, "used twice"),
        ("rules:\n  - name: x\n    if: {body: {all: []}}\n    then: {}\n", 3, "at least one"),
        ("rules:\n  - name: x\n    if: {any: []}\n    then: {}\n", 3, "at least one"),
        ("rules: {name: x}\n", 1, "valid tuple"),
    ],
)
def test_mistakes_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, queues=QUEUES, templates={"ack"}, agents=AGENTS)
    assert f"rules.yaml:{line}:" in str(caught.value)
    assert words in str(caught.value)


def test_explain_says_why(example: RuleSet) -> None:
    msg = message("Сайт недоступен", "Ничего не работает")
    decision = evaluate(example, msg, explain=True)
    text = explain(msg, decision)
    assert "HIT  outage\n         subject matched 'недоступ'" in text
    assert "miss billing\n         subject: no any of ['invoice'" in text
    assert "queue: ops" in text
    data = explain_json(msg, decision)
    json.dumps(data)
    assert data["decision"]["matched"] == ["outage"]
    assert data["trace"][1] == {
        "rule": "outage",
        "hit": True,
        "reasons": ["subject matched 'недоступ'"],
    }


def test_not_explains_itself_and_misses_are_worded_only_in_the_dry_run(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "rules:\n  - {name: n, if: {not: {from: {domain: example.org}}}, then: {tags: [x]}}\n",
    )
    inside = evaluate(rules, message(from_addr="ann@mail.example.org")).trace[0]
    assert (inside.hit, inside.reasons) == (
        False,
        ("not wanted: from matched 'ann@mail.example.org'",),
    )
    outside = message(from_addr="bob@shop.example")
    routed = evaluate(rules, outside).trace[0]
    assert (routed.hit, routed.reasons) == (True, ("the negated condition did not match",))
    dry = evaluate(rules, outside, explain=True).trace[0]
    assert dry.reasons == ("as wanted, from: no domain 'example.org'",)


def test_diff_names_changed_fields(example: RuleSet, tmp_path: Path) -> None:
    msg = message("Invoice", "please check")
    other = load(tmp_path, "defaults: {queue: general}\nrules: []\n")
    assert diff(evaluate(example, msg), evaluate(other, msg)) == {
        "queue": ("billing", "general"),
        "tags": (("billing",), ()),
        "assign": ("round_robin", None),
    }


CONTEXT_RULES = """
rules:
  - {name: imap, if: {source: {exact: "imap:support"}}, then: {tags: [imap]}}
  - {name: night, if: {business_hours: false}, then: {tags: [after-hours]}}
  - {name: returning, if: {known_customer: true}, then: {tags: [returning]}}
  - {name: agent, if: {sender_is_agent: true}, then: {tags: [from-agent]}}
  - name: watchers
    if: {from: {domain: bigcustomer.example}}
    then: {cc: [Account.Manager@example.com], assign: least_loaded}
"""


def test_context_conditions_and_watchers(tmp_path: Path) -> None:
    rules = load(tmp_path, CONTEXT_RULES)
    context = Context(source="imap:support", business_hours=False, known_customer=True)
    decision = evaluate(rules, message(from_addr="ceo@bigcustomer.example"), context)
    assert decision.tags == ("imap", "after-hours", "returning")
    assert decision.watchers == ("account.manager@example.com",)
    assert decision.assign == "least_loaded"
    daytime = evaluate(rules, message(), Context(source="smtp", business_hours=True))
    assert daytime.tags == () and daytime.assign is None


def test_named_assignee_wins_over_a_strategy(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "rules:\n  - {name: a, then: {assign: round_robin}}\n"
        "  - {name: b, then: {assignee: anna@example.com}}\n",
    )
    decision = evaluate(rules, message())
    assert (decision.assignee, decision.assign) == ("anna@example.com", None)


def test_reply_rules_run_only_on_replies(example: RuleSet) -> None:
    urgent = message("Re: [#4] Printer", "This is urgent now, please")
    assert "urgent-reply" not in evaluate(example, urgent).matched
    on_reply = evaluate(example, urgent, Context(is_reply=True))
    assert on_reply.matched == ("urgent-reply",)
    assert on_reply.priority == "high"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"rules.yaml:3: .*unknown key \(did you mean 'queue'\?\)"
    ):
        load(tmp_path, "rules:\n  - name: x\n    then: {queu: ops}\n")


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)


@settings(max_examples=200, deadline=None)
@given(subject=TEXT, body=TEXT, sender=TEXT, header=TEXT)
def test_evaluation_never_raises(subject: str, body: str, sender: str, header: str) -> None:
    example = load_rules(EXAMPLE_DIR / "rules.yaml")
    msg = message(subject, body, from_addr=sender, headers={"x-spam-flag": header})
    for context in (Context(), Context(is_reply=True)):
        decision = evaluate(example, msg, context)
        assert decision.priority in ("low", "normal", "high", "urgent")


def test_language_action_overrides_detection(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "rules:\n  - {name: ru-desk, if: {to: {exact: podderzhka@example.com}}, "
        "then: {language: ru}}\n",
    )
    english = message("Printer", "The printer in room four is on fire again, please help")
    assert evaluate(rules, english).language == "en"
    routed = message("Printer", english.new_text, to=("podderzhka@example.com",))
    assert evaluate(rules, routed).language == "ru"


def test_rule_set_names_the_context_flags_its_conditions_use(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
rules:
  - name: returning
    if: {any: [{subject: {any: [urgent]}}, {not: {known_customer: false}}]}
    then: {priority: high}
  - name: hours
    if: {business_hours: false}
    then: {tags: [night]}
""",
    )
    assert rules.flags == {"known_customer", "business_hours"}
    assert load(tmp_path, FIELDS).flags == {"language"}
