"""May this message get an automatic answer? A run of early returns, each with its reason.

The parser has already classified machine mail; the headers are checked again here because
an answer that feeds a loop costs far more than one that is not sent (RFC 3834 section 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postdesk.config.schema import Autoreply
from postdesk.parsers.classify import autoreply_header
from postdesk.parsers.model import InboundMessage, Kind
from postdesk.parsers.references import base_address

NO_REPLY = re.compile(
    r"^(mailer-?daemon|mail-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|listserv"
    r"|majordomo|root|nobody)([+.-].*)?$"
)
SUPPRESS_VALUES = ("all", "autoreply", "oof")


@dataclass(frozen=True)
class Verdict:
    send: bool
    reason: str = ""
    breaker: str = ""
    """``sender`` or ``total`` when a circuit breaker tripped: the admin must hear of it."""


@dataclass(frozen=True)
class History:
    """What was sent lately, counted from the database by the caller."""

    to_sender_last_day: int = 0
    for_ticket_last_hour: int = 0
    total_last_hour: int = 0
    """Automatic mail to customers, all addresses: staff mail has a breaker of its own."""
    suppressed: str = ""
    """Why the sender's address is suppressed (a hard bounce, a breaker), if it is."""


def decide(
    msg: InboundMessage,
    *,
    own_addresses: frozenset[str],
    history: History,
    limits: Autoreply,
    is_new_ticket: bool,
    when: str,
    in_business_hours: bool | None = None,
    loop_marker: str = "",
) -> Verdict:
    reason = _message_reason(msg, own_addresses, loop_marker)
    if not reason:
        reason = _mode_reason(when, in_business_hours, is_new_ticket, limits.on_followup)
    if reason:
        return Verdict(False, reason)
    if history.suppressed:
        return Verdict(False, f"address suppressed: {history.suppressed}")
    if history.total_last_hour >= limits.circuit_breaker_per_hour:
        return Verdict(
            False,
            f"circuit breaker: {history.total_last_hour} automatic mails to customers "
            "in the last hour",
            breaker="total",
        )
    if history.to_sender_last_day >= limits.max_per_sender_per_day:
        return Verdict(
            False,
            f"rate limit: {history.to_sender_last_day} automatic replies to "
            f"{msg.from_addr} in the last 24 hours",
            breaker="sender",
        )
    if history.for_ticket_last_hour >= limits.max_per_ticket_per_hour:
        return Verdict(
            False,
            f"rate limit: {history.for_ticket_last_hour} automatic replies on "
            "this ticket in the last hour",
        )
    return Verdict(True)


def _mode_reason(
    when: str, in_business_hours: bool | None, is_new_ticket: bool, on_followup: bool
) -> str:
    if when == "never":
        return "autoreplies are switched off (autoreply.when: never)"
    if when == "outside_business_hours" and in_business_hours:
        return "within business hours (autoreply.when: outside_business_hours)"
    if not is_new_ticket and not on_followup:
        return "follow-up to an open ticket (autoreply.on_followup is off)"
    return ""


def _message_reason(msg: InboundMessage, own: frozenset[str], loop_marker: str) -> str:
    """Why this message must never be answered automatically, whatever the limits."""
    headers = msg.headers
    sender = msg.from_addr
    local = sender.rpartition("@")[0]
    if msg.kind != Kind.CUSTOMER:
        return f"{msg.kind} mail: {msg.kind_reason}"
    if not sender:
        return "no sender address"
    if base_address(sender) in own:
        return f"sender {sender} is our own address"
    if msg.return_path == "":
        return "null return path (<>)"
    if NO_REPLY.match(local):
        return f"sender {sender} does not read replies"
    auto = headers.get("auto-submitted", "no").split(";")[0].strip().lower()
    if auto != "no":
        return f"Auto-Submitted: {auto}"
    name = autoreply_header(headers)
    if name:
        return f"{name} header"
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if any(v in suppress for v in SUPPRESS_VALUES):
        return f"X-Auto-Response-Suppress: {headers['x-auto-response-suppress']}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe", "list-post"):
        if name in headers:
            return f"mailing list ({name})"
    if "x-postdesk-loop" in headers or (
        loop_marker and headers.get("x-loop", "").lower() == loop_marker.lower()
    ):
        return "carries our loop marker"
    return ""
