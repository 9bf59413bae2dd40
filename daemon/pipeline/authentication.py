"""Which Authentication-Results verdicts prove an agent: the trusted server's own, aligned.

Anyone can write an Authentication-Results field into a mail. The fields the trusted server
(the MX) added stand above the Received field that records the hop by which the mail entered
it; whatever stands below that hop came with the mail and proves nothing. Among the fields
that count, any failing verdict wins, and a pass counts only for the agent's own domain, so
a valid signature of the attacker's domain proves nothing about the agent's From.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import authres

from postdesk.config.schema import AgentAuth

FAILING = frozenset({"fail", "softfail", "none", "neutral", "temperror", "permerror"})
METHODS = ("dkim", "spf", "dmarc")
COMMENT = re.compile(r"\([^()]*\)")
RECEIVED_FROM = re.compile(r"^\s*from\s+([^\s;]+)", re.IGNORECASE)
RECEIVED_BY = re.compile(r"\bby\s+([^\s;]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    proof: str
    """How the server proved the sender, e.g. ``dkim=pass from mx.example.com``; '' if not."""
    why_not: str = ""


def verdict(trace: Sequence[tuple[str, str]], sender: str, auth: AgentAuth) -> Verdict:
    """Judge the trusted server's own fields of a mail (top to bottom) for its sender."""
    ids = _names(auth.trusted_authserv_ids)
    if not ids:
        return Verdict("", "no trusted server is configured")
    domain = sender.rpartition("@")[2].lower()
    counted = _server_fields(
        trace, _names(auth.trusted_hosts) or ids, _names(auth.writes_below_received)
    )
    if counted is None:
        return Verdict("", "no Received field of a trusted server records the mail's entry")
    proof = ""
    for value in counted:
        header = _parse(value)
        if header is None or not _within(str(header.authserv_id), ids):
            continue
        for result in header.results:
            method, outcome = str(result.method).lower(), str(result.result).lower()
            if method not in METHODS:
                continue
            if outcome in FAILING:
                return Verdict("", f"{method}={outcome} from {header.authserv_id}")
            if outcome == "pass" and method in auth.methods and _aligned(method, result, domain):
                proof = proof or f"{method}=pass from {header.authserv_id}"
    return Verdict(proof, "" if proof else f"no trusted pass aligned with {domain}")


def _server_fields(
    trace: Sequence[tuple[str, str]], hosts: frozenset[str], below: frozenset[str]
) -> list[str] | None:
    """The Authentication-Results values above the entry hop into the trusted server, or None
    when no such hop is recorded or an untrusted hop stands above it. A field with no
    authserv-id (Microsoft 365 writes none) is given the host of the Received field right
    below it, the server that wrote it.

    A server that writes its verdict right below its own Received field (Gmail, Yandex)
    always writes one there, before anything that came with the mail: of the fields below
    the entry hop, only the topmost counts, and only for such a server."""
    fields: list[str] = []
    unnamed: list[int] = []
    for index, (name, value) in enumerate(trace):
        if name == "authentication-results":
            if _parse(value) is None:
                unnamed.append(len(fields))
            fields.append(value)
            continue
        text = COMMENT.sub(" ", COMMENT.sub(" ", value))
        by, origin = RECEIVED_BY.search(text), RECEIVED_FROM.match(text)
        for index in unnamed:
            fields[index] = f"{by[1] if by else 'unknown'}; {fields[index]}"
        unnamed = []
        if by is None or not _within(by[1], hosts):
            if origin is None:
                continue  # a local step with no hop in it
            return None  # the mail came through an untrusted hop after (or instead of) ours
        if origin is not None and _within(origin[1], hosts):
            continue  # a hop between the trusted server's own hosts
        if _within(by[1], below):
            fields += _topmost_below(trace[index + 1 :])
        return fields
    return None


def _topmost_below(trace: Sequence[tuple[str, str]]) -> list[str]:
    """The first Authentication-Results field before the next Received field, if any."""
    for name, value in trace:
        if name == "received":
            return []
        if name == "authentication-results":
            return [value]
    return []


def _aligned(method: str, result: authres.core.BaseAuthenticationResult, domain: str) -> bool:
    props = {(str(p.type).lower(), str(p.name).lower()): str(p.value) for p in result.properties}
    if method == "dkim":
        signer = props.get(("header", "d")) or props.get(("header", "i"), "").rpartition("@")[2]
        signer = signer.lower()
        return "." in signer and (domain == signer or domain.endswith("." + signer))
    if method == "spf":
        envelope = props.get(("smtp", "mailfrom"), "").rpartition("@")[2].lower()
        return envelope == domain or envelope.endswith("." + domain)
    return props.get(("header", "from"), "").lower() == domain


def _parse(value: str) -> authres.AuthenticationResultsHeader | None:
    try:
        return authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
    except Exception:
        return None


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().lower().rstrip(".") for v in values if v.strip())


def _within(host: str, names: frozenset[str]) -> bool:
    """The host is one of the names or below one (``outlook.com`` covers its hosts)."""
    host = host.strip().lower().rstrip(".")
    return any(host == n or host.endswith("." + n) for n in names)
