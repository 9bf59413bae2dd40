"""The reply fixture set: replies from public reply-parser suites and from mail clients, each
with the new part a person reading it would expect (tests/data/replies/MANIFEST.tsv).

Shared by the test that holds the quote stripper to its share and by ``bench/quotes.py``,
which measures the reply-parser libraries on the same fixtures, so both count alike.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from postdesk.parsers import mime
from tests.helpers import DATA

REPLIES = DATA / "replies"
TRAILING_SPACE = re.compile(r"[ \t\u00a0]+$", re.MULTILINE)
BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Reply:
    path: str
    """Relative to tests/data: a reply already in the corpus is not stored twice."""
    expected_path: str
    source: str
    licence: str

    def text(self) -> str:
        """The text body as postdesk reads it: an .eml through the MIME reader."""
        raw = (DATA / self.path).read_bytes()
        if self.path.endswith(".eml"):
            return mime.read(raw, None, 0).text
        return raw.decode("utf-8").replace("\r\n", "\n")

    def expected(self) -> str:
        return (DATA / self.expected_path).read_text(encoding="utf-8")


def load() -> list[Reply]:
    with (REPLIES / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        return [
            Reply(row["path"], row["expected"], row["source"], row["licence"])
            for row in csv.DictReader(manifest, delimiter="\t")
        ]


def normalise(text: str) -> str:
    """Compared text: line ends, trailing blanks and blank-line runs do not count."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return BLANK_RUNS.sub("\n\n", TRAILING_SPACE.sub("", text)).strip()


def matches(found: str | None, reply: Reply) -> bool:
    return normalise(found or "") == normalise(reply.expected())


def share(split: Callable[[str], str | None], replies: list[Reply]) -> tuple[float, list[Reply]]:
    """The share of replies whose new part ``split`` finds exactly, and the ones it misses."""
    missed = [r for r in replies if not matches(split(r.text()), r)]
    return 1 - len(missed) / len(replies), missed
