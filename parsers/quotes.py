"""The new part of a reply: the text above the quoted history and the signature.

Agents read, and the rules match, what the customer wrote now, not the thread below it.
Each mail client marks the quote its own way, in the writer's language: a ``>`` block,
an attribution line ("On ... wrote:", "Le ... a écrit :", "W dniu ... napisał:", "... пише:",
Gmail's "<date>, <name> <addr>:"), a header block ("From: / Sent: / To:", "De : / Envoyé le :
/ À :", "发件人: / 发送时间: / 收件人:"), or a separator ("-------- Original Message --------").
Mobile and webmail footers ("Sent from my iPhone", "Sendt fra min iPad") end the text like a
signature. Forwarded mail is not a quote and is kept. Every pattern is bounded to one (joined)
line, attribution patterns run only on lines that end as one can, and look-aheads are
precomputed in one pass, so the time stays linear however hostile the text.
"""

from __future__ import annotations

import re

ATTRIBUTION = re.compile(
    r"^(?:"
    r"(?:On|At)\b.{0,300}\b(?:wrote|sent) ?:"
    r"|On\b.{0,300}@[^<>\s]+>\s*wrote"
    r"|-{2,}\s*.{0,300}\bwrote\s*-{2,}"
    r"|.{0,300}(?:"
    r"\ba [ée]crit|\bschrieb\b.{0,200}|\bescribi[óo]|\bschreef\b.{0,200}|\bgeschreven"
    r"|\bskrev\b.{0,200}|\bkirjoitti|\bha scritto|\bescreveu|\bnapisa[łl](?:a|\(a\))?|\bpisze"
    r"|\bírta|đã viết|пишет|пише|написал|написала|написал\(а\)|написав"
    r") ?:"
    r")\s*$",
    re.IGNORECASE,
)
"""Attribution lines in English, French, German, Spanish, Dutch, Scandinavian, Finnish,
Italian, Portuguese, Polish, Hungarian, Vietnamese, Russian and Ukrainian; Eudora's "At ...
you wrote:" and the dashed "---- On ... wrote ----" of Zoho and Android clients."""
ATTRIBUTION_END = (":", "：", "-", "wrote")
"""Every attribution ends so: most lines are rejected before any pattern runs."""
# Gmail and Yandex in Russian: "пн, 23 нояб. 2026 г. в 10:00, Анна <anna@example.ru>:",
# Gmail's ISO form "2016-10-24 15:36 GMT+02:00 Ann <ann@example.org>:" and Japanese
# "2022年1月1日(金) 9:00 田中太郎 <taro@example.jp>:" (a year with no word boundary).
DATED_START = re.compile(r"^(?:[^\W\d_]{1,12}\.?,?\s+)?\d")
YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
ADDRESS_END = re.compile(r"<\s*[^<>\s@]+@[^<>\s]+\s*>\s*[:：]\s*$")
RULE = re.compile(r"^\s*(?:-{20,}|={4,})\s*$")
SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Исходное сообщение|Ursprüngliche Nachricht"
    r"|Message d'origine|Oprindelig (?:besked|meddelelse)|Opprinnelig melding"
    r"|Ursprungligt meddelande|Alkuperäinen viesti|Mensaje original|Messaggio originale"
    r"|Oorspronkelijk bericht|Mensagem original|Wiadomość oryginalna|Оригінальне повідомлення"
    r"|原始邮件|原始郵件)\s*-{2,}"
    r"|_{20,})\s*$",
    re.IGNORECASE,
)
LIST_FOOTER = re.compile(r"^\s*_{2,}\s*$")
LIST_NAME = re.compile(r"^\S+ mailing list\s*$", re.IGNORECASE)
"""Mailman's footer ("____" over "<name> mailing list") is the list's text, not the writer's."""
FORWARD = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded message|Пересылаемое сообщение|Перенаправленное сообщение"
    r"|Начало переадресованного сообщения|Beginning of forwarded message|Message transféré"
    r"|Weitergeleitete Nachricht|Mensaje reenviado|Doorgestuurd bericht"
    r"|Videresendt (?:melding|meddelelse)|Vidarebefordrat meddelande|Välitetty viesti)"
    r"\s*-*|Begin forwarded message:|Начало переадресованного сообщения:)\s*$",
    re.IGNORECASE,
)
"""The line above a forwarded message: Gmail and Mail.ru ("---------- Forwarded message
---------", "-------- Пересылаемое сообщение --------"), Thunderbird ("-------- Forwarded
Message --------", "-------- Перенаправленное сообщение --------"), Yandex ("--------
Начало переадресованного сообщения --------"), Apple Mail ("Begin forwarded message:")."""
FORWARD_END = re.compile(
    r"^\s*-{2,}\s*(?:Конец переадресованного сообщения|End of forwarded message)\s*-*\s*$",
    re.IGNORECASE,
)
"""Yandex closes its forwarded message with this line."""
HEADER_FROM = re.compile(
    r"^\s*\**(?:From|От кого|От|Отправитель|Від|De|Von|Fra|Från|Lähettäjä|Van|Da|Od|发件人)"
    r"\s*\**\s*[:：]\**\s*\S",
    re.IGNORECASE,
)
HEADER_DATE = re.compile(
    r"^\s*\**(?:Sent|Date|Отправлено|Дата|Надіслано|Envoyé(?: le)?|Gesendet|Datum|Sendt|Dato"
    r"|Skickat|Lähetetty|Päivämäärä|Verzonden|Enviado|Fecha|Inviato|Data|Wysłano|Message du"
    r"|发送时间|日期)"
    r"\s*\**\s*[:：]",
    re.IGNORECASE,
)
HEADER_TO = re.compile(
    r"^\s*\**(?:To|Кому|À|An|Til|Till|Vastaanottaja|Aan|Para|A|Do|收件人)\s*\**\s*[:：]",
    re.IGNORECASE,
)
SIGNATURE = re.compile(
    r"^(?:--|Sent from my [^.,!?:;]{1,40}\.?"
    r"|Sent from my (?:iPhone|iPad|iPod|BlackBerry|Android|Samsung|Galaxy|Huawei|Xiaomi|Pixel"
    r"|Nokia|Windows|mobile|phone|smartphone|tablet)\b.{0,40}"
    r"|Sent (?:from|with) (?:Mail|Outlook|Yahoo|TypeApp|Samsung|BlueMail|AOL|Sparrow"
    r"|Gmail|ProtonMail|Spark)\b.{0,80}"
    r"|Get Outlook for \w+.{0,80}|Envoyé à partir de Outlook.{0,80}"
    r"|Отправлено с (?:iPhone|iPad|моего .{0,40})|Надіслано з .{0,40}"
    r"|Sent via BlackBerry.{0,60}|Envoyé de mon .{0,30}"
    r"|Von meinem .{0,40} gesendet|Gesendet (?:von|mit) (?:meinem|der|Outlook|Mail|iPhone|iPad"
    r"|Samsung|BlackBerry|GMX|WEB\.DE|Yahoo)\b.{0,60}"
    r"|Sendt fra min .{0,30}|Skickat från min .{0,30}|Lähetetty (?:iPhone|iPad|Android).{0,30}"
    r"|Inviato da (?:iPhone|iPad|Android|Outlook|il mio .{0,30}|Libero Mail.{0,30})"
    r"|Enviado (?:do|desde|de) (?:meu|mi|o|el) .{0,30}"
    r"|Wysłane z (?:mojego|iPhone|iPad|aplikacji|Outlook).{0,40}"
    r"|Verzonden (?:met|vanaf) (?:mijn|iPhone|iPad|Outlook).{0,30}"
    r"|Надіслано з (?:iPhone|iPad|мого .{0,30})|发自我的.{0,20})\s*$",
    re.IGNORECASE,
)
ATTRIBUTION_LINES = 3
HEADER_WINDOW = 5
MAX_LINE = 600
WRAPPED_WIDTH = 40


def split_reply(text: str) -> str:
    """The new part; the whole text when everything looks quoted (nothing is ever emptied)."""
    return new_part(text) or text.strip()


def new_part(text: str) -> str:
    """The new part, empty when the writer added nothing: an agent's mail that only quotes
    must relay nothing, where a customer's must still be read by someone."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    forward = next((i for i, line in enumerate(lines) if FORWARD.match(line)), len(lines))
    kept, cut = _new_lines(lines[:forward])
    new = _strip_signature(kept)
    if not cut:
        new += lines[forward:]
    return "\n".join(new).strip()


def strip_signature(text: str) -> str:
    """The text above the signature delimiter ("-- ") or a mobile footer."""
    return "\n".join(_strip_signature(text.split("\n"))).rstrip()


def _new_lines(lines: list[str]) -> tuple[list[str], bool]:
    """Unquoted lines up to the quoted history, and whether a quote cut the text there.

    ``>`` lines, and the attribution right above them, are dropped where answers follow
    (inline replies); the first trailing quote, attribution or header block ends the text.
    An attribution with neither a quote below nor a date or address in it is ordinary text.
    """
    quoted = [line.lstrip().startswith(">") for line in lines]
    trailing = _trailing_quote(lines, quoted)
    following = _next_content(lines)
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if quoted[i]:
            if trailing[i]:
                return kept, True
            i += 1
            continue
        span = _attribution_span(lines, i)
        nxt = following[i + span - 1] if span else -1
        quote_below = nxt >= 0 and quoted[nxt]
        if span and quote_below and not trailing[nxt]:
            i += span
            continue
        if span and (quote_below or _dated(lines[i : i + span])):
            return kept, True
        if SEPARATOR.match(lines[i]) or header_block(lines, i):
            return kept, True
        below = following[i]
        if below >= 0 and (
            (RULE.match(lines[i]) and header_block(lines, below))
            or (LIST_FOOTER.match(lines[i]) and LIST_NAME.match(lines[below]))
        ):
            return kept, True
        kept.append(lines[i])
        i += 1
    return kept, False


def _trailing_quote(lines: list[str], quoted: list[bool]) -> list[bool]:
    """Per line: a quote with nothing new after it but a signature block and wrapped quote
    lines.

    A client that rewraps a long quoted line leaves the tail without ``>``; such a tail
    follows a long quoted line directly, while an answer is set off by a blank line or
    follows a short one (Thunderbird's "> Hi" with the answer right under it).
    """
    wrapped = [False] * len(lines)
    for i in range(1, len(lines)):
        if lines[i].strip() and not quoted[i]:
            long_quote = quoted[i - 1] and len(lines[i - 1]) >= WRAPPED_WIDTH
            wrapped[i] = long_quote or wrapped[i - 1]
    result = [False] * len(lines)
    new_after = False
    for i in range(len(lines) - 1, -1, -1):
        result[i] = quoted[i] and not new_after
        stripped = lines[i].strip()
        if stripped == "--":
            new_after = False  # what followed was the signature block and its disclaimer
        elif stripped and not quoted[i] and not wrapped[i] and not SIGNATURE.match(stripped):
            new_after = True
    return result


def _next_content(lines: list[str]) -> list[int]:
    """Per line: the index of the next non-blank line after it, or -1."""
    result = [-1] * len(lines)
    nxt = -1
    for i in range(len(lines) - 1, -1, -1):
        result[i] = nxt
        if lines[i].strip():
            nxt = i
    return result


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines an attribution starting here takes (0: none); Gmail wraps it to 3.

    A wrapped first line carries the date or the address, so only a line with a digit or an
    ``@`` and no sentence end may begin a multi-line attribution; a customer's last sentence
    never does.
    """
    first = lines[index].strip()
    if not first:
        return 0
    if _is_attribution(first):
        return 1
    if not any(ch.isdigit() or ch == "@" for ch in first) or first.endswith((".", "!", "?")):
        return 0
    block = [first]
    for line in lines[index + 1 : index + ATTRIBUTION_LINES]:
        if not line.strip():
            return 0
        block.append(line.strip())
        if _is_attribution(" ".join(block)):
            return len(block)
    return 0


def _dated(block: list[str]) -> bool:
    """A real attribution names a date or an address; "As I wrote:" in a reply does neither."""
    return any(ch.isdigit() or ch == "@" for line in block for ch in line)


def _is_attribution(line: str) -> bool:
    if len(line) > MAX_LINE or not line.endswith(ATTRIBUTION_END):
        return False
    if ATTRIBUTION.match(line):
        return True
    return bool(DATED_START.match(line) and YEAR.search(line) and ADDRESS_END.search(line))


def header_block(lines: list[str], index: int) -> bool:
    """A header block: "From:" closely followed by a date and a recipient field (any order),
    or directly by a date; or a date first, closely followed by "From:" or "To:" (as
    Thunderbird and BlackBerry write it)."""
    line = lines[index]
    window = lines[index + 1 : index + 1 + HEADER_WINDOW]
    if HEADER_FROM.match(line):
        dated = any(HEADER_DATE.match(s) for s in window)
        return dated and (
            any(HEADER_TO.match(s) for s in window) or bool(HEADER_DATE.match(window[0]))
        )
    if HEADER_DATE.match(line):
        return any(HEADER_FROM.match(s) or HEADER_TO.match(s) for s in window)
    return False


def _strip_signature(lines: list[str]) -> list[str]:
    """Cut at the first signature line that has text above it."""
    seen_text = False
    for i, line in enumerate(lines):
        if seen_text and SIGNATURE.match(line.strip()):
            return lines[:i]
        seen_text = seen_text or bool(line.strip())
    return lines
