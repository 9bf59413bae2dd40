"""The customer's language from the letters they wrote: enough to answer in Russian or English."""

from __future__ import annotations

MIN_LETTERS = 12
"""Fewer letters than this ("ok", "+1", a number) say nothing about the language."""
RUSSIAN_SHARE = 0.3
"""Russian mail often quotes Latin names, codes and URLs, so a minority of Cyrillic counts."""
SCANNED = 5000


def detect(text: str) -> str | None:
    """``ru``, ``en``, or None when there are too few letters or they are mostly neither."""
    cyrillic = latin = letters = 0
    for ch in text[:SCANNED]:
        if not ch.isalpha():
            continue
        letters += 1
        if "\u0400" <= ch <= "\u052f":
            cyrillic += 1
        elif ch < "\u0250":
            latin += 1
    if letters < MIN_LETTERS:
        return None
    if cyrillic >= RUSSIAN_SHARE * letters:
        return "ru"
    return "en" if latin > letters / 2 else None
