"""May this message get an automatic answer? A run of early returns, each with its reason.

The parser has already classified machine mail; the headers are checked again here because
an answer that feeds a loop costs far more than one that is not sent (RFC 3834 section 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.model import InboundMessage, Kind

NO_REPLY = re.compile(
    r"^(mailer-?daemon|mail-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|listserv"
    r"|majordomo|root|nobody)([+.-].*)?$"
)
SUPPRESS_VALUES = ("all", "autoreply", "oof")


@dataclass(frozen=True)
class Verdict:
    send: bool
    reason: str = ""


def decide(
    msg: InboundMessage,
    *,
    own_addresses: frozenset[str],
    sent_to_sender_last_day: int,
    max_per_day: int,
    is_new_ticket: bool,
    on_followup: bool,
    when: str,
    in_business_hours: bool | None = None,
    loop_marker: str = "",
) -> Verdict:
    reason = _reason(
        msg,
        own_addresses,
        sent_to_sender_last_day,
        max_per_day,
        is_new_ticket,
        on_followup,
        when,
        in_business_hours,
        loop_marker,
    )
    return Verdict(not reason, reason)


def _reason(
    msg: InboundMessage,
    own: frozenset[str],
    sent: int,
    max_per_day: int,
    is_new_ticket: bool,
    on_followup: bool,
    when: str,
    in_business_hours: bool | None,
    loop_marker: str,
) -> str:
    headers = msg.headers
    sender = msg.from_addr
    local, _, domain = sender.rpartition("@")
    if when == "never":
        return "autoreplies are switched off (autoreply.when: never)"
    if when == "outside_business_hours" and in_business_hours:
        return "within business hours (autoreply.when: outside_business_hours)"
    if msg.kind != Kind.CUSTOMER:
        return f"{msg.kind} mail: {msg.kind_reason}"
    if not sender:
        return "no sender address"
    if f"{local.split('+', 1)[0]}@{domain}" in own:
        return f"sender {sender} is our own address"
    if msg.return_path == "":
        return "null return path (<>)"
    if NO_REPLY.match(local):
        return f"sender {sender} does not read replies"
    auto = headers.get("auto-submitted", "no").split(";")[0].strip().lower()
    if auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
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
    if not is_new_ticket and not on_followup:
        return "follow-up to an open ticket (autoreply.on_followup is off)"
    if sent >= max_per_day:
        return f"rate limit: {sent} automatic replies to {sender} in the last 24 hours"
    return ""
