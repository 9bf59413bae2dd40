"""`postdesk report`: the figures of a period, in one of four formats."""

from __future__ import annotations

from datetime import datetime, timedelta

from postdesk.config.schema import parse_duration
from postdesk.daemon.app import App
from postdesk.daemon.reporting.html import to_html
from postdesk.daemon.reporting.text import table, to_csv, to_json
from postdesk.store.figures import PROMOTER, SATISFIED, Report, Thresholds
from postdesk.store.report import report

FORMATS = ("table", "json", "csv", "html")


def build(app: App, since: datetime, until: datetime, by: str | None = None) -> Report:
    wanted = app.settings.report.thresholds
    nps = app.settings.survey.scale == "nps"
    thresholds = Thresholds(
        first_response={label: seconds(label) for label in wanted.first_response},
        resolution={label: seconds(label) for label in wanted.resolution},
        satisfied_from=PROMOTER if nps else SATISFIED,
        nps=nps,
    )
    with app.db.transaction() as session:
        return report(
            session, since, until, lambda q: app.playbook.calendar(q).between, by, thresholds
        )


def seconds(label: str) -> float:
    duration = parse_duration(label)
    assert isinstance(duration, timedelta), label
    return duration.total_seconds()


def render(data: Report, fmt: str) -> str:
    return {"table": table, "json": to_json, "csv": to_csv, "html": to_html}[fmt](data)
