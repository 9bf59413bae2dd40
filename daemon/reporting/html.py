"""The report as one self-contained HTML page: inline CSS and SVG charts."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from postdesk.daemon.reporting.charts import charts
from postdesk.daemon.reporting.text import rows, title
from postdesk.store.figures import Report

TEMPLATES = Path(__file__).parent / "templates"


def to_html(data: Report) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    columns = [("all", rows(data.overall))] + [(k, rows(v)) for k, v in data.groups.items()]
    return env.get_template("report.html").render(
        title=title(data),
        data=data,
        labels=[label for label, _ in columns[0][1]],
        columns=columns,
        charts=charts(data),
    )
