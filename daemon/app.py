"""Everything a running postdesk needs, built once from the settings and rebuilt on reload."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from postdesk.autoreplies.calendar import Calendar
from postdesk.autoreplies.render import Templates
from postdesk.config.errors import ConfigError
from postdesk.config.loader import config_file, load
from postdesk.config.schema import Settings
from postdesk.parsers.model import ParseContext
from postdesk.parsers.references import base_address
from postdesk.rules.loader import load_rules, no_rules
from postdesk.rules.model import RuleSet
from postdesk.rules.schema import Defaults
from postdesk.store.blobs import BlobStore
from postdesk.store.db import Database
from postdesk.store.models import Ticket
from postdesk.store.raw import RawStore

log = logging.getLogger("postdesk.app")


def load_secret(path: Path) -> bytes:
    """The installation's HMAC key for reply tokens, created on first use."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return bytes.fromhex(key)
    except ValueError as exc:
        raise ConfigError(f"{path}:1: the secret file must hold a hex key") from exc


@dataclass
class Playbook:
    """What the admin's files say the desk does, swapped together by `reload` and all
    validated before use: rules, templates and the business calendars (the default one
    under the key "", then one per queue)."""

    rules: RuleSet
    templates: Templates
    calendars: dict[str, Calendar]
    brand_templates: dict[str, Templates] = field(default_factory=dict)
    """A brand's own templates folder, before the installation's and the shipped ones."""

    def calendar(self, queue: str) -> Calendar:
        return self.calendars.get(queue) or self.calendars[""]

    def templates_for(self, address: str) -> Templates:
        return self.brand_templates.get(address) or self.templates


def load_playbook(settings: Settings) -> Playbook:
    templates = Templates(settings.templates)
    calendars = {"": Calendar.from_settings(settings.business_hours)}
    for queue in settings.queues:
        hours = settings.business_hours_for(queue.name)
        if hours != settings.business_hours:
            calendars[queue.name] = Calendar.from_settings(hours)
    rules = (
        load_rules(
            settings.rules,
            queues={q.name for q in settings.queues},
            templates=templates.names(),
            agents=set(settings.agent_addresses),
        )
        if settings.rules
        else no_rules(settings.queues[0].name if settings.queues else Defaults().queue)
    )
    brand_templates = {
        address: Templates(brand.templates, settings.templates)
        for address, brand in settings.brands.items()
        if brand.templates
    }
    return Playbook(rules, templates, calendars, brand_templates)


@dataclass
class App:
    config_path: str | None
    settings: Settings
    db: Database
    raw: RawStore
    blobs: BlobStore
    secret: bytes
    playbook: Playbook
    own_addresses: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def open(cls, config_path: str | None) -> App:
        file = config_file(config_path)
        settings = load(file)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        return cls(
            config_path=str(file) if file else None,
            settings=settings,
            db=db,
            raw=RawStore(settings.data_dir / "raw", db),
            blobs=BlobStore(settings.data_dir / "attachments"),
            secret=load_secret(settings.secret_path),
            playbook=load_playbook(settings),
            own_addresses=frozenset(settings.support_addresses),
        )

    def reload(self) -> None:
        """Swap in new rules and templates only if they validate; keep the old ones otherwise."""
        settings = load(self.config_path)
        playbook = load_playbook(settings)
        self.settings = settings
        self.playbook = playbook
        self.own_addresses = frozenset(settings.support_addresses)
        log.info("configuration reloaded", extra={"rules": str(playbook.rules.source or "(none)")})

    def parse_context(
        self, *, keep_attachments: bool = True, envelope_to: tuple[str, ...] = ()
    ) -> ParseContext:
        return ParseContext(
            own_addresses=self.own_addresses,
            agent_addresses=self.settings.agent_addresses,
            secret=self.secret,
            loop_marker=self.loop_marker,
            store_blob=self.blobs.put if keep_attachments else None,
            max_attachment_bytes=self.settings.limits.max_attachment_bytes,
            envelope_to=envelope_to,
        )

    def later(self, queue: str, start: datetime, duration: timedelta, business: bool) -> datetime:
        """``start`` plus ``duration`` in the queue's business time, or in plain time."""
        return self.playbook.calendar(queue).add(start, duration) if business else start + duration

    def reminder_at(self, ticket: Ticket, start: datetime) -> datetime:
        lifecycle = self.settings.lifecycle
        return self.later(
            ticket.queue, start, lifecycle.reminder_after, lifecycle.clock == "business"
        )

    def watched_files(self) -> dict[str, int]:
        """Modification times of every file a reload reads (missing files count too): the
        templates of every folder and its snippets too, as Templates list them once per
        load, so that a template added or removed anywhere makes a reload."""
        settings = self.settings
        paths = [Path(self.config_path)] if self.config_path else []
        if settings.rules:
            paths.append(settings.rules)
        folders = [settings.templates, *(brand.templates for brand in settings.brands.values())]
        for folder in folders:
            if folder and folder.is_dir():
                paths.extend(sorted(folder.iterdir()))
                if (folder / "snippets").is_dir():
                    paths.extend(sorted((folder / "snippets").iterdir()))
        found = {}
        for path in paths:
            try:
                found[str(path)] = path.stat().st_mtime_ns
            except OSError:
                found[str(path)] = -1
        return found

    @property
    def loop_marker(self) -> str:
        return self.settings.support_addresses[0]

    def accepts(self, address: str) -> bool:
        """Our support addresses, with or without a ``+tag``: nothing else (no open relay)."""
        return base_address(address) in self.own_addresses
