"""What ties a message to a ticket: signed reply tokens, Message-IDs we sent, ``[#N]`` tags.

A token is ``t<ticket id>x<HMAC>``: it appears in a reply address (``support+TOKEN@``) and
in the Message-IDs of our mail (``pd.TOKEN.<random>@``), so a reply proves which ticket it
answers and a guessed ticket number proves nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

TAG = re.compile(r"\[#(\d{1,9})\]")
TOKEN = re.compile(r"t(\d{1,12})x([a-z2-7]{16})")
AGENT_TOKEN = re.compile(r"a(\d{1,12})x([a-z2-7]{16})")
SURVEY_TOKEN = re.compile(r"s(\d{1,12})v(\d{1,2})x([a-z2-7]{16})")
SURVEY_ADDRESS_TOKEN = re.compile(r"^[^@+]+\+(s\d{1,12}v\d{1,2}x[a-z2-7]{16})@", re.IGNORECASE)
ADDRESS_TOKEN = re.compile(r"^[^@+]+\+(t\d{1,12}x[a-z2-7]{16})@", re.IGNORECASE)
AGENT_ADDRESS_TOKEN = re.compile(r"^[^@+]+\+(a\d{1,12}x[a-z2-7]{16})@", re.IGNORECASE)
ID_TOKEN = re.compile(r"^pd\.(t\d{1,12}x[a-z2-7]{16})\.", re.IGNORECASE)
MESSAGE_ID = re.compile(r"<([^<>\s]{1,900})>")


def make_token(secret: bytes, ticket_id: int) -> str:
    return f"t{ticket_id}x{_mac(secret, ticket_id)}"


def make_agent_token(secret: bytes, ticket_id: int, agent: str) -> str:
    """A reply token for one agent on one ticket: a customer who sees the customer token
    still cannot command the ticket by forging the agent's From."""
    return f"a{ticket_id}x{_mac(secret, ticket_id, 'agent:' + agent.lower())}"


def verify_agent_token(secret: bytes, token: str, agent: str) -> int | None:
    match = AGENT_TOKEN.fullmatch(token.lower())
    if match is None or not secret:
        return None
    ticket_id = int(match[1])
    expected = _mac(secret, ticket_id, "agent:" + agent.lower())
    return ticket_id if hmac.compare_digest(match[2], expected) else None


def make_survey_token(secret: bytes, ticket_id: int, score: int) -> str:
    return f"s{ticket_id}v{score}x{_mac(secret, ticket_id, f'survey:{score}')}"


def verify_survey_token(secret: bytes, token: str) -> tuple[int, int] | None:
    """(ticket id, score) of a genuine survey answer address."""
    match = SURVEY_TOKEN.fullmatch(token.lower())
    if match is None or not secret:
        return None
    ticket_id, score = int(match[1]), int(match[2])
    expected = _mac(secret, ticket_id, f"survey:{score}")
    return (ticket_id, score) if hmac.compare_digest(match[3], expected) else None


def survey_tokens(addresses: Iterable[str]) -> tuple[str, ...]:
    found = (m[1].lower() for a in addresses if (m := SURVEY_ADDRESS_TOKEN.match(a)))
    return tuple(dict.fromkeys(found))


def agent_tokens(addresses: Iterable[str]) -> tuple[str, ...]:
    found = (m[1].lower() for a in addresses if (m := AGENT_ADDRESS_TOKEN.match(a)))
    return tuple(dict.fromkeys(found))


def verify_token(secret: bytes, token: str) -> int | None:
    """The ticket id a token proves, or None for anything forged, truncated or foreign."""
    match = TOKEN.fullmatch(token.lower())
    if match is None or not secret:
        return None
    ticket_id = int(match[1])
    return ticket_id if hmac.compare_digest(match[2], _mac(secret, ticket_id)) else None


def _mac(secret: bytes, ticket_id: int, scope: str = "") -> str:
    text = f"ticket:{ticket_id}" + (f":{scope}" if scope else "")
    digest = hmac.new(secret, text.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def token_tickets(
    secret: bytes, addresses: Iterable[str], message_ids: Iterable[str]
) -> tuple[int, ...]:
    """Ticket ids proven by tokens in recipient addresses or referenced Message-IDs."""
    found: list[int] = []
    candidates = [m[1] for a in addresses if (m := ADDRESS_TOKEN.match(a))]
    candidates += [m[1] for i in message_ids if (m := ID_TOKEN.match(i))]
    for token in candidates:
        ticket_id = verify_token(secret, token)
        if ticket_id is not None and ticket_id not in found:
            found.append(ticket_id)
    return tuple(found)


ENCLOSED_TOKEN = re.compile(rb"(?:pd\.|\+)(t\d{1,12}x[a-z2-7]{16})[.@]", re.IGNORECASE)


def enclosed_tokens(secret: bytes, raw: bytes) -> tuple[int, ...]:
    """Tickets named by our Message-IDs or reply addresses anywhere in a bounce: the returned
    original sits inside it, where no header field of the bounce itself points."""
    found: list[int] = []
    for match in ENCLOSED_TOKEN.finditer(raw[:2_000_000]):
        ticket_id = verify_token(secret, match[1].decode().lower())
        if ticket_id is not None and ticket_id not in found:
            found.append(ticket_id)
    return tuple(found)


ENCLOSED_MESSAGE_ID = re.compile(
    rb"pd\.(t\d{1,12}x[a-z2-7]{16})\.[0-9a-z]{1,40}@[0-9a-z.-]{1,255}", re.IGNORECASE
)


def enclosed_message_ids(secret: bytes, raw: bytes) -> tuple[str, ...]:
    """Our own Message-IDs anywhere in a bounce, with a valid token: which mail bounced.

    Only the mail we sent with one of these ids tells who may have failed; the addresses a
    bounce lists are its sender's claim."""
    found: list[str] = []
    for match in ENCLOSED_MESSAGE_ID.finditer(raw[:2_000_000]):
        if verify_token(secret, match[1].decode().lower()) is None:
            continue
        value = match[0].decode().lower()
        if value not in found:
            found.append(value)
    return tuple(found)


def base_address(address: str) -> str:
    """The address without a ``+tag``: ``support+t1x...@example.com`` is ``support@example.com``."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def subject_tag(subject: str) -> int | None:
    match = TAG.search(subject)
    return int(match[1]) if match else None


def message_ids(value: str) -> tuple[str, ...]:
    """The ids in an In-Reply-To or References header, without angle brackets.

    Broken clients omit the brackets; then each whitespace-separated word with an ``@``
    counts.
    """
    ids = MESSAGE_ID.findall(value)
    if not ids:
        ids = [word.strip("<>,;") for word in value.split() if "@" in word]
    return tuple(dict.fromkeys(i for i in ids if i))
