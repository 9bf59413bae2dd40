"""Typed settings for config.yaml; pydantic names the bad key and value for the admin."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: object) -> object:
    """Accept '30m', '8h', '2d', '1h30m' or a number of seconds."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(f"{value!r} is not a duration such as 30m, 8h, 2d or 1h30m")
    return timedelta(**{_UNITS[u]: float(n) for n, u in parts})


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(Strict):
    smtp: str | None = "127.0.0.1:2525"
    lmtp: str | None = None
    max_connections: int = Field(default=100, ge=1)
    """Open SMTP/LMTP connections in all; a client beyond the limit gets 421."""
    max_connections_per_client: int = Field(default=50, ge=1)
    """Open connections from one client address. Behind an MTA every connection comes from
    it: keep this above its delivery concurrency (Postfix: 20 by default)."""
    idle_timeout: Duration = timedelta(minutes=5)
    """A connection that sends no command for this long is closed (RFC 5321: 5 minutes)."""
    socket: Path | None = Path("postdesk.sock")
    """The local socket to which `postdesk ingest -` hands a piped message; relative to
    `data_dir`, null for none (the pipe then ingests in its own process)."""

    @field_validator("smtp", "lmtp")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_host_port(value)
        return value


class Secret(Strict):
    """A secret is read from the environment or a file, never only from config.yaml."""

    password_env: str | None = None
    password_file: Path | None = None


class SmtpRelay(Secret):
    host: str
    port: int = 25
    security: Literal["tls", "starttls", "none"] = "none"
    username: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=60)
    """Seconds per relay operation; at most 60, so one attempt ends well within a claim."""


class Outgoing(Strict):
    smtp: SmtpRelay | None = None
    maildir: Path | None = None
    max_attempts: int = Field(default=20, ge=1)
    retry_base: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(hours=1)


class OAuth2(Strict):
    """XOAUTH2 login: a fresh access token is read at every connection, since they expire."""

    token_command: str | None = None
    """A shell command that prints the access token (e.g. a refresh helper)."""
    token_file: Path | None = None
    """A file that another process keeps refreshed."""

    @model_validator(mode="after")
    def _one_source(self) -> OAuth2:
        if (self.token_command is None) == (self.token_file is None):
            raise ValueError("oauth2 needs exactly one of token_command or token_file")
        return self


class Mailbox(Secret):
    name: str
    host: str
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str
    oauth2: OAuth2 | None = None
    folder: str = "INBOX"
    after_import: Literal["move", "seen", "delete"] = "move"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    poll_interval: Duration = timedelta(minutes=1)


class Agent(Strict):
    email: str
    name: str = ""
    queues: list[str] = []


class AgentAuth(Strict):
    """What proves that mail from an agent's address is really from the agent."""

    trusted_authserv_ids: list[str] = []
    """Authentication-Results with these authserv-ids (your MX; a name covers the hosts
    below it) are believed, and only where that server added them; others are ignored."""
    trusted_hosts: list[str] = []
    """Host names (or parent domains) in the `by` part of the trusted server's Received
    fields; default: the trusted authserv-ids."""
    writes_below_received: list[str] = []
    """Trusted servers (authserv-id names) that write their verdict right below their own
    Received field instead of above it, as Gmail and Yandex do; there only the topmost
    field counts."""
    methods: list[Literal["dkim", "spf", "dmarc"]] = ["dkim", "dmarc"]


class Notify(Strict):
    """Which events mail the assignee (or, without one, the queue's members)."""

    new_ticket: bool = True
    customer_reply: bool = True
    assignment: bool = True
    attach_up_to: int = Field(default=5 * 1024 * 1024, ge=0)
    """Attachments up to this total size travel with the notification; larger ones are listed."""
    max_per_agent_per_hour: int = Field(default=60, ge=1)
    """Notifications (new ticket, customer reply, assignment, internal note) to one agent in
    an hour; the rest are recorded on their tickets, not mailed."""
    forgery_notices_per_agent_per_hour: int = Field(default=1, ge=1)
    """Warnings to an agent that mail forged in their name was refused; every forged mail
    is recorded on its ticket all the same."""
    staff_breaker_per_hour: int = Field(default=1000, ge=1)
    """All staff mail in one hour; beyond it notifications and notices stop and the admin
    is told. Customer mail has its own breaker (autoreply.circuit_breaker_per_hour)."""


class BusinessHours(Strict):
    timezone: str = "UTC"
    week: dict[str, str] = {"mon-fri": "09:00-18:00"}
    holidays: dict[str, str] = {}
    closed: list[str] = []
    open: list[str] = []


class SlaTarget(Strict):
    first_response: Duration
    resolution: Duration


class Queue(Strict):
    """A queue (a support line); `parent` makes a hierarchy, the rest overrides the defaults."""

    name: str
    parent: str | None = None
    escalation: str | None = None
    members: list[str] = []
    business_hours: BusinessHours | None = None
    sla: dict[str, SlaTarget] | None = None
    autoreply_when: Literal["always", "outside_business_hours", "never"] | None = None
    line: int = Field(default=1, ge=1)
    """The support line; a move to a queue of a higher line counts as an escalation."""


def _durations(values: list[str]) -> list[str]:
    for value in values:
        parse_duration(value)
    return values


Thresholds = Annotated[list[str], AfterValidator(_durations)]


class Brand(Strict):
    """A support address with a face of its own: every mail about a ticket that came in on
    it leaves from it, under its name, in its language, with its templates and signature."""

    address: str
    name: str = ""
    language: Literal["en", "ru"] | None = None
    templates: Path | None = None
    signature: str = ""


class ReportThresholds(Strict):
    """Times whose shares the report gives, in business time, labelled as written here."""

    first_response: Thresholds = ["30m", "1h"]
    resolution: Thresholds = ["8h"]


class ReportSettings(Strict):
    thresholds: ReportThresholds = ReportThresholds()


class Channel(Strict):
    name: str
    value: str
    for_: list[str] = Field(default=[], alias="for")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Autoreply(Strict):
    when: Literal["always", "outside_business_hours", "never"] = "always"
    max_per_sender_per_day: int = Field(default=5, ge=0)
    max_per_ticket_per_hour: int = Field(default=2, ge=0)
    circuit_breaker_per_hour: int = Field(default=2000, ge=1)
    """Automatic mail to customers (acknowledgements, reminders, closing notices, surveys) in
    one hour; beyond it acknowledgements stop and the admin is told. Staff mail is not
    counted: it has its own breaker (notify.staff_breaker_per_hour)."""
    bounce_suppression: Duration = timedelta(days=60)
    """How long an address that hard-bounced gets no automatic mail."""
    html: bool = False
    on_followup: bool = False


class Lifecycle(Strict):
    reminder_after: Duration = timedelta(days=2)
    max_reminders: int = Field(default=2, ge=0)
    close_resolved_after: Duration = timedelta(days=7)
    reopen_within: Duration = timedelta(days=14)
    clock: Literal["calendar", "business"] = "calendar"
    unassigned_after: Duration = timedelta(days=1)
    digest_at: str = "09:00"
    managers: str | None = None
    sla_warning_at: float = Field(default=0.8, ge=0.0, lt=1.0)
    """Warn the queue when this share of an SLA target has passed (0 turns warnings off)."""


class Survey(Strict):
    enabled: bool = True
    scale: Literal["good_bad", "1-5", "nps"] = "good_bad"
    """nps: 0-10, "how likely are you to recommend us"; the report gives the NPS figure."""
    send_on: list[Literal["agent_close", "resolve", "auto_close"]] = ["agent_close", "auto_close"]
    """When the closing notice carries the survey: an agent's #close, an agent's #resolve,
    the automatic close. A ticket is surveyed once."""


class Limits(Strict):
    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)


class Metrics(Strict):
    listen: str | None = None


def _default_sla() -> dict[str, SlaTarget]:
    hours = timedelta(hours=1)
    return {
        "urgent": SlaTarget(first_response=hours / 2, resolution=8 * hours),
        "high": SlaTarget(first_response=2 * hours, resolution=24 * hours),
        "normal": SlaTarget(first_response=8 * hours, resolution=5 * 24 * hours),
        "low": SlaTarget(first_response=24 * hours, resolution=10 * 24 * hours),
    }


class Settings(Strict):
    """The whole of config.yaml, with every path already resolved against its folder."""

    database: str = ""
    data_dir: Path = Path("postdesk-data")
    secret_file: Path | None = None
    env_file: Path | None = None
    """NAME=value lines loaded into the environment before any secret is read."""
    instance: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    """This daemon's stable name: a restart under the same name resumes its mailbox leases
    and outbox claims at once. Two daemons running at once need different names."""
    support_addresses: list[str] = ["support@localhost"]
    """Each entry of config.yaml is an address or a brand; here, the addresses alone."""
    brands: dict[str, Brand] = {}
    """Brand by address, for the entries given as brands (filled from support_addresses)."""
    admin_address: str | None = None
    listen: Listen = Listen()
    mailboxes: list[Mailbox] = []
    outgoing: Outgoing = Outgoing()
    agents: list[Agent] = []
    forward_ack: bool = False
    """`agents.forward_ack`: whether the customer of a ticket an agent opened by forwarding
    the customer's mail gets the acknowledgement (the customer wrote to the agent, not to
    us, and may not expect mail from the desk)."""
    agent_auth: AgentAuth = AgentAuth()
    notify: Notify = Notify()
    queues: list[Queue] = [Queue(name=n) for n in ("general", "billing", "ops")]
    rules: Path | None = None
    templates: Path | None = None
    language: Literal["en", "ru"] = "en"
    business_hours: BusinessHours = BusinessHours()
    sla: dict[str, SlaTarget] = Field(default_factory=_default_sla)
    channels: list[Channel] = []
    autoreply: Autoreply = Autoreply()
    lifecycle: Lifecycle = Lifecycle()
    survey: Survey = Survey()
    limits: Limits = Limits()
    report: ReportSettings = ReportSettings()
    assign_on_first_answer: bool = False
    """An unassigned ticket goes to the agent who first answers it."""
    metrics: Metrics = Metrics()

    @model_validator(mode="before")
    @classmethod
    def _brands_from_addresses(cls, data: Any) -> Any:
        """`support_addresses` entries may be brands ({address, name, ...}): the addresses
        stay a plain list that every part reads, the brands are kept beside it."""
        if not isinstance(data, dict) or not isinstance(data.get("support_addresses"), list):
            return data
        entries = data["support_addresses"]
        brands = {
            address: {**e, "address": address}
            for e in entries
            if isinstance(e, dict) and (address := str(e.get("address", "")).strip().lower())
        }
        addresses = [e.get("address", "") if isinstance(e, dict) else e for e in entries]
        return {**data, "support_addresses": addresses, "brands": brands}

    @model_validator(mode="before")
    @classmethod
    def _agents_with_options(cls, data: Any) -> Any:
        """`agents` is the list of agents, or a mapping of the options about them with the
        list under `team`: the contract's list form stays valid."""
        if not isinstance(data, dict):
            return data
        if "forward_ack" in data:
            raise ValueError("forward_ack belongs under agents (agents.forward_ack)")
        if not isinstance(data.get("agents"), dict):
            return data
        options = dict(data["agents"])
        unknown = set(options) - {"team", "forward_ack"}
        if unknown:
            raise ValueError(f"agents: unknown key {sorted(unknown)[0]!r} (team, forward_ack)")
        return {
            **data,
            "agents": options.get("team", []),
            "forward_ack": options.get("forward_ack", False),
        }

    def brand(self, address: str) -> Brand:
        """The brand of a support address; a plain address is a brand with no extras."""
        return self.brands.get(address) or Brand(address=address)

    @field_validator("support_addresses")
    @classmethod
    def _some_address(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one support address is needed")
        return [a.strip().lower() for a in value]

    @model_validator(mode="after")
    def _queues_form_a_tree(self) -> Settings:
        parents = {q.name: q.parent for q in self.queues}
        if len(parents) != len(self.queues):
            raise ValueError("queue names must be unique")
        for name in parents:
            seen = {name}
            parent = parents[name]
            while parent:
                if parent not in parents:
                    raise ValueError(f"queue {name!r}: unknown parent {parent!r}")
                if parent in seen:
                    raise ValueError(f"queue {name!r}: parents form a cycle")
                seen.add(parent)
                parent = parents[parent]
        return self

    def queue_chain(self, name: str) -> list[Queue]:
        """The queue and its parents, nearest first: where overrides are looked up."""
        by_name = {q.name: q for q in self.queues}
        chain = []
        while name in by_name:
            chain.append(by_name[name])
            name = by_name[name].parent or ""
        return chain

    def members_of(self, queue: str) -> list[str]:
        """The queue's listed members, then the agents who name the queue, in config order."""
        listed = next((q.members for q in self.queues if q.name == queue), [])
        found = [m.lower() for m in listed]
        found += [a.email.lower() for a in self.agents if queue in a.queues]
        return list(dict.fromkeys(found))

    def line_of(self, queue: str) -> int:
        return next((q.line for q in self.queues if q.name == queue), 1)

    def sla_for(self, queue: str, priority: str) -> SlaTarget | None:
        for q in self.queue_chain(queue):
            if q.sla and priority in q.sla:
                return q.sla[priority]
        return self.sla.get(priority)

    def business_hours_for(self, queue: str) -> BusinessHours:
        return next(
            (q.business_hours for q in self.queue_chain(queue) if q.business_hours),
            self.business_hours,
        )

    def autoreply_when_for(self, queue: str) -> str:
        return next(
            (q.autoreply_when for q in self.queue_chain(queue) if q.autoreply_when),
            self.autoreply.when,
        )

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'postdesk.db'}"

    @property
    def pipe_socket(self) -> Path | None:
        """An absolute `listen.socket` stays as it is; a relative one lies in `data_dir`."""
        return self.data_dir / self.listen.socket if self.listen.socket else None

    @property
    def secret_path(self) -> Path:
        return self.secret_file or self.data_dir / "secret"

    @property
    def agent_addresses(self) -> frozenset[str]:
        return frozenset(a.email.lower() for a in self.agents)
