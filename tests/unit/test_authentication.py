"""The verdict on a mail's trace fields: where a field stands, what it says, whose domain."""

from __future__ import annotations

import pytest

from postdesk.config.schema import AgentAuth
from postdesk.daemon.pipeline.authentication import verdict

ENTRY = ("received", "from mail.example.com (mail.example.com [192.0.2.10]) by mx.example.com")
AUTH = AgentAuth(trusted_authserv_ids=["mx.example.com"], methods=["dkim", "spf", "dmarc"])


def judged(*results: str, sender: str = "anna@example.com", auth: AgentAuth = AUTH) -> str:
    trace = [("authentication-results", f"mx.example.com; {r}") for r in results]
    return verdict([*trace, ENTRY], sender, auth).proof


@pytest.mark.parametrize(
    ("result", "sender", "proven"),
    [
        ("dkim=pass header.d=example.com", "anna@example.com", True),
        ("dkim=pass header.d=example.com", "anna@support.example.com", True),  # parent domain
        ("dkim=pass header.d=support.example.com", "anna@example.com", False),
        ("dkim=pass header.d=com", "anna@example.com", False),
        ("dkim=pass header.i=@example.com", "anna@example.com", True),
        ("spf=pass smtp.mailfrom=bounces.example.com", "anna@example.com", True),
        ("spf=pass smtp.mailfrom=anna@example.com.evil.example", "anna@example.com", False),
        ("dmarc=pass header.from=example.com", "anna@example.com", True),
        ("dmarc=pass header.from=example.com", "anna@support.example.com", False),
    ],
)
def test_a_pass_counts_only_aligned(result: str, sender: str, proven: bool) -> None:
    assert bool(judged(result, sender=sender)) is proven


@pytest.mark.parametrize(
    "outcome", ["fail", "softfail", "none", "neutral", "temperror", "permerror"]
)
def test_any_failing_verdict_wins(outcome: str) -> None:
    assert judged("dkim=pass header.d=example.com", f"spf={outcome}") == ""


def test_a_method_left_out_of_the_settings_proves_nothing() -> None:
    dkim_only = AgentAuth(trusted_authserv_ids=["mx.example.com"], methods=["dkim"])
    assert judged("spf=pass smtp.mailfrom=example.com", auth=dkim_only) == ""
    assert judged("spf=pass smtp.mailfrom=example.com") == "spf=pass from mx.example.com"


def test_an_untrusted_hop_above_the_entry_voids_every_field() -> None:
    trace = [
        ("received", "from mx.example.com (mx.example.com [192.0.2.1]) by relay.evil.example"),
        ("authentication-results", "mx.example.com; dkim=pass header.d=example.com"),
        ENTRY,
    ]
    found = verdict(trace, "anna@example.com", AUTH)
    assert found.proof == ""
    assert "Received" in found.why_not


def test_fields_of_another_server_and_below_the_entry_are_not_read() -> None:
    trace = [
        ("authentication-results", "mx.evil.example; dkim=pass header.d=example.com"),
        ENTRY,
        ("authentication-results", "mx.example.com; dkim=pass header.d=example.com"),
    ]
    assert verdict(trace, "anna@example.com", AUTH).proof == ""


def test_without_a_trusted_server_nothing_is_believed() -> None:
    trace = [("authentication-results", "mx.example.com; dkim=pass header.d=example.com"), ENTRY]
    assert (
        verdict(trace, "anna@example.com", AgentAuth()).why_not == "no trusted server is configured"
    )
