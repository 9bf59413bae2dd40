"""`postdesk report`: the figures of a period, in one of four formats."""

from __future__ import annotations

from datetime import datetime

from postdesk.daemon.app import App
from postdesk.daemon.reporting.html import to_html
from postdesk.daemon.reporting.text import table, to_csv, to_json
from postdesk.store.figures import Report
from postdesk.store.report import report

FORMATS = ("table", "json", "csv", "html")


def build(app: App, since: datetime, until: datetime, by: str | None = None) -> Report:
    with app.db.transaction() as session:
        return report(session, since, until, lambda q: app.playbook.calendar(q).between, by)


def render(data: Report, fmt: str) -> str:
    return {"table": table, "json": to_json, "csv": to_csv, "html": to_html}[fmt](data)
