"""How often the new part of a reply is found exactly, by postdesk and by the reply-parser
libraries on PyPI, over the same fixtures, and what finding it costs.

    python bench/quotes.py [--rounds 5] [--misses]

The fixtures are tests/data/replies/MANIFEST.tsv (public reply-parser suites and replies
written as each client writes them); the share counts a reply as found only when the text
equals the expected new part (line ends, trailing blanks and blank-line runs aside). The
cost is the median over --rounds of the microseconds per text, over the fixtures and the
text bodies of the whole corpus (tests/data/corpus). A library that is not installed
(`pip install mail-parser-reply email_reply_parser`) is reported as such.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from postdesk.parsers import mime
from postdesk.parsers.quotes import split_reply
from tests import replies
from tests.helpers import DATA

Split = Callable[[str], str | None]


def libraries() -> dict[str, Split | str]:
    """Each library's "latest reply" function, or why it cannot be measured."""
    found: dict[str, Split | str] = {}
    try:
        from mailparser_reply import EmailReplyParser
        from mailparser_reply.constants import MAIL_LANGUAGES

        languages = [name for name in MAIL_LANGUAGES if len(name) == 2]
        found["mail-parser-reply"] = EmailReplyParser(languages=languages).parse_reply
    except ImportError:
        found["mail-parser-reply"] = "not installed"
    try:
        from email_reply_parser import EmailReplyParser as Zapier

        found["email_reply_parser"] = Zapier.parse_reply
    except ImportError:
        found["email_reply_parser"] = "not installed"
    return found


def corpus_texts() -> list[str]:
    texts = []
    for path in sorted((DATA / "corpus").rglob("*.eml")):
        try:
            texts.append(mime.read(path.read_bytes(), None, 0).text)
        except Exception:  # a message the MIME reader refuses has no text to strip
            continue
    return texts


def cost(split: Split, texts: list[str], rounds: int) -> float:
    """Median microseconds per text over the rounds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            split(text)
        times.append((time.perf_counter() - start) / len(texts) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--misses", action="store_true", help="list the replies each one misses")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # mail-parser names every part type it skips
    fixtures = replies.load()
    texts = [r.text() for r in fixtures] + corpus_texts()
    print(f"{len(fixtures)} replies; cost over {len(texts)} texts (replies and corpus bodies)")
    candidates: dict[str, Split | str] = {"postdesk": split_reply, **libraries()}
    for name, split in candidates.items():
        if isinstance(split, str):
            print(f"{name:20} {split}")
            continue
        found, missed = replies.share(split, fixtures)
        micros = cost(split, texts, args.rounds)
        print(f"{name:20} {found:6.1%} of replies exact   {micros:8.1f} µs/text")
        if args.misses:
            for reply in missed:
                print(f"    missed {reply.path}")


if __name__ == "__main__":
    main()
