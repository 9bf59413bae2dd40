"""What a message is: a run of early returns, cheapest and surest signal first.

Machine mail must never become a customer ticket or get an acknowledgement: that is how
help desks end up in mail loops with each other. Headers decide almost every case; subject
patterns (English and Russian) catch the MTAs and vacation responders that set none.
flufl.bounce is consulted only for mail already judged a bounce, to name the failed
recipients: scanning every message with it is slow and mistakes some replies for bounces.
"""

from __future__ import annotations

import logging
import re
from email.message import Message

from postdesk.parsers.model import Kind
from postdesk.parsers.references import base_address

log = logging.getLogger("postdesk.parsers")

DAEMONS = {"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon", "mmdf"}
NO_REPLY = re.compile(r"^(no-?reply|do-?not-?reply|bounces?|listserv|majordomo)([+.-].*)?$")
BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed|failed|notification)"
    r"|mail delivery (failed|failure|system)|returned mail|failure notice|could not be delivered"
    r"|message not delivered|non[- ]?delivery|delivery problem|warning: message"
    r"|недостав|не доставлено|не удалось доставить|ошибка доставки|возвращенное сообщение",
    re.IGNORECASE,
)
AUTOREPLY_SUBJECT = re.compile(
    r"^(auto:|read:|прочитано:|delivered:|return receipt)"
    r"|auto(matic|matische)?[ -]?(reply|response|antwort|réponse)|out of (the )?office"
    r"|away from (the office|my desk)|on vacation|vacation reply|abwesenheitsnotiz"
    r"|réponse automatique|risposta automatica|respuesta automática|automatyczna odpowied"
    r"|autom[aā]tiska atbilde|automaattinen vastaus|автоответ|автоматический ответ"
    r"|нет на месте|в отпуске|вне офиса",
    re.IGNORECASE,
)
MTA_NAME = re.compile(r'^\s*"?mail delivery (?:subsystem|system)\b', re.IGNORECASE)
"""The display name sendmail, Exim, Postfix and Gmail give their bounces, whatever the address."""
SOCIAL_HEADERS = ("x-facebook", "x-linkedin-class", "x-linkedin-template")
SOCIAL_DOMAINS = ("facebookmail.com",)
"""Social networks' notifications carry no Precedence or List header, only their own."""
EMPTY_GROUP = re.compile(r'^\s*"?(?P<name>[^:;<>@"]{1,80})"?\s*:\s*;\s*$')
"""``To: list:;``: an announcement to a group that names nobody. The group an MTA writes for
mail sent only to blind copies (``undisclosed-recipients:;``) is a person's mail too."""
BLIND_COPY_GROUPS = {
    "undisclosed-recipients",
    "undisclosed recipients",
    "recipients",
    "unlisted-recipients",
}
CHALLENGE_SUBJECT = re.compile(
    r"please confirm (your|that)|verify your (email|message)|challenge.?response|"
    r"spam ?arrest|boxbe|подтвердите отправку",
    re.IGNORECASE,
)


def classify(
    message: Message,
    headers: dict[str, str],
    sender: str,
    own: frozenset[str],
    agents: frozenset[str],
    loop_marker: str,
) -> tuple[Kind, str]:
    marker = loop_marker.lower()
    if "x-postdesk-loop" in headers:
        return Kind.LOOP, "carries our X-Postdesk-Loop marker"
    if headers.get("x-loop", "").lower() == marker:
        return Kind.LOOP, f"X-Loop is {marker}"
    if base_address(sender) in own:
        return Kind.LOOP, f"sent from our own address {sender}"
    local = sender.partition("@")[0]
    subject = headers.get("subject", "")
    # Bounce signals weigh more from a null sender; plain mail without a sender is quarantined.
    null_sender = not sender or headers.get("return-path") == "<>"
    report = _report_type(message)
    if report == "delivery-status" or "x-failed-recipients" in headers:
        return Kind.BOUNCE, "delivery status notification"
    if message.get_content_type() == "message/delivery-status":
        return Kind.BOUNCE, "delivery status notification"
    if report == "feedback-report":
        return Kind.BOUNCE, "abuse feedback report (ARF)"
    if report == "disposition-notification":
        return Kind.AUTOREPLY, "read receipt (disposition notification)"
    if "mailer-daemon" in headers.get("from", "").lower():
        return Kind.BOUNCE, "sent by MAILER-DAEMON"
    if MTA_NAME.match(headers.get("from", "")):
        return Kind.BOUNCE, "sent by the mail system (Mail Delivery System)"
    bounce_subject = BOUNCE_SUBJECT.search(subject)
    if local in DAEMONS and (bounce_subject or null_sender):
        return Kind.BOUNCE, f"sent by {local}"
    if bounce_subject and (null_sender or "auto-submitted" in headers):
        return Kind.BOUNCE, f"bounce subject {subject[:60]!r}"
    auto = headers.get("auto-submitted", "no").split(";")[0].strip().lower()
    if auto != "no":
        return Kind.AUTOREPLY, f"Auto-Submitted: {auto}"
    name = autoreply_header(headers)
    if name:
        return Kind.AUTOREPLY, f"{name} header"
    if "auto_reply" in headers.get("precedence", "").lower():
        return Kind.AUTOREPLY, "Precedence: auto_reply"
    if (
        headers.get("x-ms-exchange-inbox-rules-loop")
        or "oof" in headers.get("x-auto-response-suppress", "").lower()
    ):
        return Kind.AUTOREPLY, "Exchange automatic reply"
    if AUTOREPLY_SUBJECT.search(subject):
        return Kind.AUTOREPLY, f"automatic reply subject {subject[:60]!r}"
    if CHALLENGE_SUBJECT.search(subject):
        return Kind.AUTOREPLY, "challenge-response request"
    if bounce_subject:
        return Kind.BOUNCE, f"bounce subject {subject[:60]!r}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return Kind.BULK, f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe", "list-post", "x-mailing-list", "mailing-list"):
        if name in headers:
            return Kind.BULK, f"mailing list ({name})"
    if "newsgroups" in headers:
        return Kind.BULK, "newsgroup post"
    if message.get_content_type() == "multipart/digest":
        return Kind.BULK, "digest (multipart/digest)"
    social = next((h for h in SOCIAL_HEADERS for name in headers if name.startswith(h)), None)
    domain = sender.rpartition("@")[2]
    if social or any(domain == d or domain.endswith("." + d) for d in SOCIAL_DOMAINS):
        return Kind.BULK, f"social network notification ({social or sender})"
    group = EMPTY_GROUP.match(headers.get("to", ""))
    if group and group["name"].strip().lower() not in BLIND_COPY_GROUPS:
        return Kind.BULK, f"announcement to an empty group ({group['name'].strip()}:;)"
    if headers.get("x-spam-flag", "").strip().lower() == "yes":
        return Kind.BULK, "marked as spam (X-Spam-Flag)"
    if sender and null_sender:
        return Kind.AUTOREPLY, "null return path"
    if NO_REPLY.match(local):
        return Kind.BULK, f"no-reply sender {sender}"
    if sender in agents:
        return Kind.AGENT, "configured agent address"
    return Kind.CUSTOMER, ""


def autoreply_header(headers: dict[str, str]) -> str | None:
    """A vendor header that marks an automatic reply (X-Autoreply, X-Mailru-Autoreply, ...)."""
    for name in headers:
        if name == "x-autogenerated" or (
            ("autorepl" in name or "autorespon" in name) and name != "x-auto-response-suppress"
        ):
            return name
    return None


def bounced_recipients(message: Message) -> tuple[str, ...]:
    """The failed recipients flufl.bounce finds; empty when it finds none or fails. Its
    detectors compile their patterns on import, so only a bounce imports it."""
    from flufl.bounce import scan_message

    try:
        found = scan_message(message)
    except Exception as exc:
        log.warning("bounce scan failed", extra={"error": repr(exc)})
        return ()
    addresses = (a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in found)
    return tuple(sorted(a.lower() for a in addresses if "@" in a))


def _report_type(message: Message) -> str:
    """The report-type of the first multipart/report in the top two levels."""
    queue = [message]
    for _ in range(2):
        children: list[Message] = []
        for part in queue:
            if part.get_content_type() == "multipart/report":
                return str(part.get_param("report-type", "")).lower()
            payload = part.get_payload() if part.is_multipart() else None
            if isinstance(payload, list):
                children.extend(p for p in payload if isinstance(p, Message))
        queue = children
    return ""
