"""The new part of a reply: the text above the quoted history and the signature.

Agents read, and the rules match, what the customer wrote now, not the thread below it.
Each mail client marks the quote its own way, in the writer's language: a ``>`` block,
an attribution line ("On ... wrote:", "... пишет:", Gmail's Russian "<date>, <name> <addr>:"),
or an Outlook header block ("From: / Sent: / To:", "От: / Отправлено: / Кому:").
Forwarded mail is not a quote and is kept. All patterns are anchored to one line, so the
time stays linear in the length of the text, however hostile.
"""

from __future__ import annotations

import re

ATTRIBUTION = re.compile(
    r"^(?:"
    r"On\b.{0,300}\bwrote:"
    r"|Le\b.{0,300}\ba [ée]crit ?:"
    r"|Am\b.{0,300}\bschrieb.{0,100}:"
    r"|El\b.{0,300}\bescribi[óo]:"
    r"|Op\b.{0,300}\bschreef.{0,100}:"
    r"|Den\b.{0,300}\bskrev.{0,100}:"
    r"|.{0,300}\bkirjoitti:"
    r"|.{0,300}\b(?:пишет|написал|написала|написал\(а\)):"
    r"|.{0,300}\bskrev\b.{0,300}:"
    r"|.{0,200}\d{4}.{0,200}<[^<>\s]+@[^<>\s]+\s*>:?"
    r")\s*$",
    re.IGNORECASE,
)
SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Исходное сообщение|Ursprüngliche Nachricht"
    r"|Message d'origine|Oprindelig (?:besked|meddelelse)|Opprinnelig melding"
    r"|Ursprungligt meddelande|Alkuperäinen viesti|Mensaje original|Messaggio originale"
    r"|Oorspronkelijk bericht)\s*-{2,}"
    r"|_{20,}|-{20,})\s*$",
    re.IGNORECASE,
)
HEADER_FROM = re.compile(
    r"^\s*\**(?:From|От|De|Von|Fra|Från|Lähettäjä|Van|Da)\s*:\**\s*\S", re.IGNORECASE
)
HEADER_NEXT = re.compile(
    r"^\s*\**(?:Sent|Date|To|Subject|Отправлено|Дата|Кому|Тема|Envoyé|Date|À|Objet|Gesendet"
    r"|An|Betreff|Sendt|Til|Emne|Skickat|Till|Ämne|Lähetetty|Vastaanottaja|Aihe|Verzonden"
    r"|Aan|Onderwerp|Enviado|Para|Asunto)\s*:",
    re.IGNORECASE,
)
SIGNATURE = re.compile(
    r"^(?:--\s?|Sent from my \w+.{0,40}|Sent from (?:Mail|Outlook) for .{0,40}"
    r"|Get Outlook for \w+.{0,80}|Envoyé à partir de Outlook.{0,80}"
    r"|Отправлено с (?:iPhone|iPad|моего .{0,40})"
    r"|Sent from Yahoo Mail.{0,40}|Sent via BlackBerry.{0,60}|Envoyé de mon .{0,30}"
    r"|Von meinem .{0,40} gesendet)\s*$",
    re.IGNORECASE,
)
ATTRIBUTION_LINES = 3


def split_reply(text: str) -> str:
    """The new part; the whole text when everything looks quoted (nothing is ever emptied)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _quote_start(lines)
    kept = lines[:cut]
    if _interleaved(lines[cut:]):
        kept += [line for line in lines[cut + 1 :] if not line.lstrip().startswith(">")]
    new = "\n".join(_strip_signature(kept)).strip()
    return new or text.strip()


def _interleaved(rest: list[str]) -> bool:
    """An attribution, a quote, then answers between quoted lines: the answers are new."""
    content = [s.strip() for s in rest[1:] if s.strip()]
    if not content or not content[0].startswith(">") or not _is_attribution(rest[0].strip()):
        return False
    return any(not s.startswith(">") and not _is_attribution(s) for s in content)


def _quote_start(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">") and _rest_is_quote(lines, i):
            return _attribution_above(lines, i)
        if SEPARATOR.match(line) or _outlook_block(lines, i) or _attribution_at(lines, i):
            return i
    return len(lines)


def _attribution_at(lines: list[str], index: int) -> bool:
    """An attribution starting here, wrapped over up to three lines as Gmail and Outlook do.

    A wrapped first line carries the date, so only a line with a digit and no sentence end
    may begin a multi-line attribution; a customer's last sentence never does.
    """
    first = lines[index].strip()
    if _is_attribution(first):
        return True
    if not any(ch.isdigit() for ch in first) or first.endswith((".", "!", "?")):
        return False
    block = [first]
    for line in lines[index + 1 : index + ATTRIBUTION_LINES]:
        if not line.strip():
            return False
        block.append(line.strip())
        if _is_attribution(" ".join(block)):
            return True
    return False


def _is_attribution(line: str) -> bool:
    return len(line) <= 600 and ATTRIBUTION.match(line) is not None


def _rest_is_quote(lines: list[str], start: int) -> bool:
    """A ``>`` line starts the quote only if no unquoted text follows (inline answers stay)."""
    rest = [s.strip() for s in lines[start:] if s.strip()]
    plain = [s for s in rest if not s.startswith(">") and not SIGNATURE.match(s)]
    return len(plain) <= len(rest) // 4


def _attribution_above(lines: list[str], index: int) -> int:
    for back in range(max(0, index - ATTRIBUTION_LINES), index):
        if lines[back].strip() and _attribution_at(lines, back):
            return back
    return index


def _outlook_block(lines: list[str], index: int) -> bool:
    if not HEADER_FROM.match(lines[index]):
        return False
    following = [s for s in lines[index + 1 : index + 6] if s.strip()]
    return sum(1 for s in following if HEADER_NEXT.match(s)) >= 2


def _strip_signature(lines: list[str]) -> list[str]:
    for i in range(len(lines) - 1, -1, -1):
        if SIGNATURE.match(lines[i]) and i > 0:
            return lines[:i]
    return lines
