"""The report as one self-contained HTML page: inline CSS and SVG charts."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from postdesk.daemon.reporting.charts import charts
from postdesk.daemon.reporting.text import duration, rows, share, title
from postdesk.store.figures import Figures, Report

TEMPLATES = Path(__file__).parent / "templates"


def headline(f: Figures) -> list[tuple[str, str, str]]:
    """What a support lead looks at first: (figure, value, what it counts)."""
    business = f.first_response_business
    cards = [
        ("tickets created", str(f.created), f"{f.resolved} resolved, {f.closed} closed"),
        ("first response", duration(business.median), "median, business time"),
        *(
            (f"answered within {label}", share(value), "of first responses")
            for label, value in f.first_response_within.items()
        ),
        ("within SLA", share(f.first_response_within_sla), "first responses"),
        *(
            (f"resolved within {label}", share(value), "business time")
            for label, value in f.resolution_within.items()
        ),
        ("backlog", str(f.backlog), f"{f.backlog_past_sla} past SLA"),
        ("reopened", share(f.reopen_rate), "of resolved tickets"),
        ("escalated", share(f.escalation_rate), "to a higher line"),
    ]
    if f.nps is not None:
        cards.append(("NPS", f"{f.nps:+.0f}", f"{f.surveys_answered} answers"))
    else:
        cards.append(("CSAT", share(f.csat), f"{f.surveys_answered} of {f.surveys_sent} answered"))
    return cards


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
        headline=headline(data.overall),
    )
