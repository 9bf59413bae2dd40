"""The addresses our mail carries: the support address a ticket speaks from, signed reply
addresses and Message-IDs, and the thread root. Every outgoing mail takes them from here."""

from __future__ import annotations

import secrets

from postdesk.daemon.app import App
from postdesk.parsers.model import InboundMessage
from postdesk.parsers.references import base_address, make_agent_token, make_token
from postdesk.store.models import Ticket


def support_address(app: App, msg: InboundMessage) -> str:
    """The support address the customer wrote to, so answers come from where they wrote."""
    for address in (*msg.to, *msg.cc):
        if (base := base_address(address)) in app.own_addresses:
            return base
    return app.settings.support_addresses[0]


def message_id(app: App, ticket: Ticket, address: str) -> str:
    """A Message-ID that proves the ticket when a reply references it."""
    domain = address.rpartition("@")[2]
    return f"pd.{make_token(app.secret, ticket.id)}.{secrets.token_hex(6)}@{domain}"


def reply_address(app: App, ticket: Ticket, address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}+{make_token(app.secret, ticket.id)}@{domain}"


def agent_reply_address(app: App, ticket: Ticket, agent: str) -> str:
    """Where one agent answers one ticket: the token in it is that agent's proof."""
    local, _, domain = app.settings.support_addresses[0].rpartition("@")
    return f"{local}+{make_agent_token(app.secret, ticket.id, agent)}@{domain}"


def thread_root(app: App, ticket: Ticket) -> str:
    """A fixed Message-ID every agent notification refers to: one thread per ticket."""
    domain = app.settings.support_addresses[0].rpartition("@")[2]
    return f"pd.{make_token(app.secret, ticket.id)}.root@{domain}"
