"""Email policies whose header classes are built once per field name, not once per field.

The standard library's ``HeaderRegistry`` creates a new class for every header it parses
or sets, and every message has a few dozen of them (our addresses read, our mail composed).
"""

from __future__ import annotations

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry


class CachedRegistry(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


DEFAULT = policy.default.clone(header_factory=CachedRegistry())
SMTP = policy.SMTP.clone(header_factory=CachedRegistry())
