"""The addresses our mail carries: the support address a ticket speaks from, signed reply
addresses and Message-IDs, and the thread root. Every outgoing mail takes them from here."""

from __future__ import annotations

import secrets
from email.utils import formataddr

from postdesk.daemon.app import App
from postdesk.parsers.model import InboundMessage
from postdesk.parsers.references import base_address, make_agent_token, make_token
from postdesk.store.models import Ticket


def support_address(app: App, msg: InboundMessage) -> str:
    """The support address the customer wrote to, so answers come from where they wrote;
    when we were a blind copy, the one the mail was delivered to."""
    for address in (*msg.to, *msg.cc, *msg.envelope_to):
        if (base := base_address(address)) in app.own_addresses:
            return base
    return app.settings.support_addresses[0]


def ticket_address(app: App, ticket: Ticket) -> str:
    """The support address a ticket speaks from: its brand's, while that is still ours."""
    brand = ticket.brand or ""
    return brand if brand in app.own_addresses else app.settings.support_addresses[0]


def brand_from(app: App, ticket: Ticket) -> str:
    """The From of automatic mail about the ticket: the brand's name and address."""
    address = ticket_address(app, ticket)
    name = app.settings.brand(address).name
    return formataddr((name, address)) if name else address


def message_id(app: App, ticket: Ticket, address: str) -> str:
    """A Message-ID that proves the ticket when a reply references it."""
    domain = address.rpartition("@")[2]
    return f"pd.{make_token(app.secret, ticket.id)}.{secrets.token_hex(6)}@{domain}"


def reply_address(app: App, ticket: Ticket, address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}+{make_token(app.secret, ticket.id)}@{domain}"


def agent_reply_address(app: App, ticket: Ticket, agent: str) -> str:
    """Where one agent answers one ticket: the token in it is that agent's proof."""
    local, _, domain = ticket_address(app, ticket).rpartition("@")
    return f"{local}+{make_agent_token(app.secret, ticket.id, agent)}@{domain}"


def thread_root(app: App, ticket: Ticket) -> str:
    """A fixed Message-ID every agent notification refers to: one thread per ticket."""
    domain = ticket_address(app, ticket).rpartition("@")[2]
    return f"pd.{make_token(app.secret, ticket.id)}.root@{domain}"
