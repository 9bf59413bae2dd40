"""The customer's language from the letters they wrote: enough to answer in Russian or English."""

from __future__ import annotations

MIN_LETTERS = 12


def detect(text: str) -> str | None:
    cyrillic = latin = 0
    for ch in text[:5000]:
        if "\u0400" <= ch <= "\u04ff":
            cyrillic += 1
        elif ch.isascii() and ch.isalpha():
            latin += 1
    letters = cyrillic + latin
    if letters < MIN_LETTERS:
        return None
    return "ru" if cyrillic / letters >= 0.3 else "en"
