"""Cost of evaluating a large rules file against a typical message.

    python bench/rules_eval.py [--rules 200] [--repeat 7]

Generates N rules in the shapes admins write (keyword lists in English and Russian,
combinations, regular expressions, domains), loads them as the daemon does, and prints the
median time of one evaluation over several repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import timeit
from pathlib import Path

import yaml

from postdesk.parsers import parse
from postdesk.parsers.model import ParseContext
from postdesk.rules.engine import evaluate
from postdesk.rules.loader import load_rules

WORDS = [
    "invoice",
    "refund",
    "outage",
    "password",
    "счет",
    "оплат",
    "возврат",
    "недоступ",
    "ошибк",
    "доступ",
    "delivery",
    "order",
    "contract",
    "упал",
    "сбой",
    "login",
]


def rule(i: int) -> dict[str, object]:
    word = WORDS[i % len(WORDS)]
    shapes: list[dict[str, object]] = [
        {"subject": [f"{word}{i}", f"{word}-{i}", word + "x" * (i % 3)]},
        {"any": [{"subject": [f"{word}{i}"]}, {"body": {"all": [f"{word}{i}", "urgent"]}}]},
        {"all": [{"from": {"domain": f"client{i}.example"}}, {"not": {"subject": ["re"]}}]},
        {"body": {"regex": rf"order #{i}\d+"}},
        {"header": {"name": "X-Customer", "exact": f"vip-{i}"}},
    ]
    return {"name": f"rule-{i}", "if": shapes[i % len(shapes)], "then": {"tags": [f"t{i}"]}}


MESSAGE = (
    "From: Anna <anna@customer.example>\r\nTo: support@example.com\r\n"
    "Subject: =?utf-8?b?0J3QtSDRgNCw0LHQvtGC0LDQtdGCINC+0L/Qu9Cw0YLQsCDRgdGH0ZHRgtCw?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    + "Здравствуйте! После обновления не проходит оплата, страница показывает ошибку. " * 8
    + "\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Support <support@example.com> wrote:\r\n> old\r\n"
).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(yaml.safe_dump({"rules": [rule(i) for i in range(args.rules)]}))
        ruleset = load_rules(path)
    msg = parse(MESSAGE, ParseContext())
    number = 200
    times = timeit.repeat(lambda: evaluate(ruleset, msg), number=number, repeat=args.repeat)
    per_call = [t / number * 1e6 for t in times]
    print(
        f"{args.rules} rules: median {statistics.median(per_call):.0f} µs per evaluation "
        f"(min {min(per_call):.0f}, max {max(per_call):.0f}; {args.repeat}×{number} calls)"
    )


if __name__ == "__main__":
    main()
