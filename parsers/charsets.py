"""Bytes to text when the declared charset is missing or wrong.

charset-normalizer guesses most encodings well but mistakes short Russian 8-bit text
(a KOI8-R subject line) for cp1251 or CJK, and Russian mail from old clients is exactly the
case that arrives undeclared. So Cyrillic-looking bytes are told apart by letter case: Russian
text is mostly lower case, which sits at 0xE0-0xFF in cp1251 and at 0xC0-0xDF in KOI8-R.
"""

from __future__ import annotations

import codecs

CANDIDATES = ["utf_8", "cp1251", "koi8_r", "cp1252", "iso8859_2", "gb18030", "shift_jis", "euc_kr"]


def decode(data: bytes, declared: str | None = None) -> tuple[str, str | None]:
    """Text and, when the declared charset could not be used, a note saying what was done."""
    if declared:
        try:
            return data.decode(_codec(declared)), None
        except (LookupError, ValueError):
            guessed = guess(data)
            return data.decode(
                guessed, "replace"
            ), f"charset {declared!r} failed, read as {guessed}"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        guessed = guess(data)
        return data.decode(guessed, "replace"), f"undeclared 8-bit text read as {guessed}"


def guess(data: bytes) -> str:
    upper = sum(1 for b in data if 0xC0 <= b <= 0xDF)
    lower = sum(1 for b in data if b >= 0xE0)
    ascii_letters = sum(1 for b in data if 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A)
    if upper + lower > ascii_letters:
        return "cp1251" if lower >= upper else "koi8_r"
    from charset_normalizer import from_bytes  # rare: imported by the first mail that needs it

    best = from_bytes(data, cp_isolation=CANDIDATES).best()
    return best.encoding if best else "cp1252"


def _codec(name: str) -> str:
    """Common aliases that Python does not know under the name mailers use."""
    name = name.strip().strip('"').lower()
    aliases = {"unicode-1-1-utf-7": "utf-7", "x-unknown": "utf-8", "ks_c_5601-1987": "cp949"}
    return codecs.lookup(aliases.get(name, name)).name
