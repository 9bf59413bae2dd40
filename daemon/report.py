"""`postdesk report` output: a terminal table, JSON, CSV, or one self-contained HTML page.

The HTML page carries its CSS and SVG charts inline (drawn here, no scripts) so that it can be
mailed or opened offline.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from postdesk.daemon.app import App
from postdesk.store.metrics import Durations, Figures, Report, report

FORMATS = ("table", "json", "csv", "html")
TEMPLATES = Path(__file__).parent / "templates"
COLORS = ("#3867d6", "#20bf6b", "#eb3b5a")


def build(app: App, since: datetime, until: datetime, by: str | None = None) -> Report:
    with app.db.transaction() as session:
        return report(session, since, until, lambda q: app.policy.calendar(q).between, by)


def render(data: Report, fmt: str) -> str:
    return {"table": table, "json": to_json, "csv": to_csv, "html": to_html}[fmt](data)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def to_json(data: Report) -> str:
    return json.dumps(asdict(data), default=_plain, ensure_ascii=False, indent=2)


def flatten(figures: Figures) -> dict[str, Any]:
    """`Figures` as dotted names: "first_response.median", "sla_flags.first_response_breach"."""
    flat: dict[str, Any] = {}
    for name, value in asdict(figures).items():
        if isinstance(value, dict):
            flat.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    return flat


def to_csv(data: Report) -> str:
    """Long form (group, metric, value): one shape whatever the grouping, easy to pivot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "metric", "value"])
    for group, figures in [("all", data.overall), *data.groups.items()]:
        writer.writerows([group, metric, value] for metric, value in flatten(figures).items())
    for agent in data.agents:
        writer.writerows(
            [f"agent:{agent.agent}", metric, getattr(agent, metric)]
            for metric in ("replies", "tickets")
        )
    return out.getvalue()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def rows(figures: Figures) -> list[tuple[str, str]]:
    """The lines a support lead reads, in reading order."""

    def times(label: str, d: Durations) -> list[tuple[str, str]]:
        return [
            (f"{label} mean", duration(d.mean)),
            (f"{label} median", duration(d.median)),
            (f"{label} p90", duration(d.p90)),
        ]

    f = figures
    return [
        ("tickets created", str(f.created)),
        ("tickets resolved", str(f.resolved)),
        ("tickets closed", str(f.closed)),
        *times("first response", f.first_response),
        *times("first response (business)", f.first_response_business),
        *times("resolution", f.resolution),
        *times("resolution (business)", f.resolution_business),
        ("first response within SLA", share(f.first_response_within_sla)),
        ("resolution within SLA", share(f.resolution_within_sla)),
        ("first response breaches", str(f.sla_flags.get("first_response_breach", 0))),
        ("resolution breaches", str(f.sla_flags.get("resolution_breach", 0))),
        ("resolution rate", share(f.resolution_rate)),
        ("first-contact resolution", share(f.first_contact_resolution)),
        ("reopen rate", share(f.reopen_rate)),
        ("backlog at end", str(f.backlog)),
        ("backlog past SLA", str(f.backlog_past_sla)),
        ("autoreplies sent", str(f.autoreplies_sent)),
        ("autoreplies suppressed", str(sum(f.autoreplies_suppressed.values()))),
        ("surveys sent", str(f.surveys_sent)),
        ("surveys answered", str(f.surveys_answered)),
        ("survey response rate", share(f.survey_response_rate)),
        ("CSAT (satisfied)", share(f.csat)),
    ]


def title(data: Report) -> str:
    span = (
        f"{data.since.isoformat(timespec='minutes')} .. {data.until.isoformat(timespec='minutes')}"
    )
    return f"Support report {span}" + (f", by {data.by}" if data.by else "")


def table(data: Report) -> str:
    columns = [("all", rows(data.overall))] + [(k, rows(v)) for k, v in data.groups.items()]
    width = max(len(label) for label, _ in columns[0][1])
    cells = [max(len(name), *(len(v) for _, v in lines)) for name, lines in columns]
    out = [title(data), ""]
    out.append(
        " " * width + "".join(f"  {n:>{w}}" for (n, _), w in zip(columns, cells, strict=True))
    )
    for i, (label, _) in enumerate(columns[0][1]):
        values = "".join(f"  {c[1][i][1]:>{w}}" for c, w in zip(columns, cells, strict=True))
        out.append(f"{label:<{width}}{values}")
    suppressed = data.overall.autoreplies_suppressed
    if suppressed:
        out += ["", "autoreplies suppressed by reason:"]
        out += [f"  {count:>6}  {reason}" for reason, count in suppressed.items()]
    if data.agents:
        out += ["", f"{'agent':<40} {'replies':>8} {'tickets':>8}"]
        out += [f"{a.agent:<40} {a.replies:>8} {a.tickets:>8}" for a in data.agents]
    return "\n".join(out)


def bar_chart(labels: list[str], series: list[tuple[str, list[float]]], unit: str = "") -> Markup:
    """Grouped vertical bars, one colour per series, with a legend and the values on hover."""
    width, height, left, bottom = 640, 220, 36, 40
    top = max((v for _, values in series for v in values), default=0) or 1
    slot = (width - left) / max(len(labels), 1)
    bar = slot * 0.8 / len(series)
    parts = [_axes(width, height, left, bottom, top, unit)]
    for s, (name, values) in enumerate(series):
        for i, value in enumerate(values):
            h = (height - bottom - 10) * value / top
            x = left + i * slot + slot * 0.1 + s * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}">'
                f"<title>{escape(name)} {escape(labels[i])}: {value:g}</title></rect>"
            )
    step = max(1, len(labels) // 12)
    for i in range(0, len(labels), step):
        x = left + (i + 0.5) * slot
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle">'
            f"{escape(labels[i])}</text>"
        )
    parts += _legend([name for name, _ in series], height)
    return _svg(width, height, parts)


def line_chart(labels: list[str], values: list[float | None], unit: str = "") -> Markup:
    """A line over days; days without a value (no survey answered) leave a gap."""
    width, height, left, bottom = 640, 220, 36, 40
    top = max((v for v in values if v is not None), default=0) or 1
    slot = (width - left) / max(len(labels), 1)
    parts = [_axes(width, height, left, bottom, top, unit)]
    points = [
        (left + (i + 0.5) * slot, height - bottom - (height - bottom - 10) * v / top, v, i)
        for i, v in enumerate(values)
        if v is not None
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>'
        )
    for x, y, v, i in points:
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLORS[0]}">'
            f"<title>{escape(labels[i])}: {v:g}{unit}</title></circle>"
        )
    step = max(1, len(labels) // 12)
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 14}" '
            f'text-anchor="middle">{escape(labels[i])}</text>'
        )
    return _svg(width, height, parts)


def _axes(width: int, height: int, left: int, bottom: int, top: float, unit: str) -> str:
    base = height - bottom
    return (
        f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#888"/>'
        f'<line x1="{left}" y1="10" x2="{left}" y2="{base}" stroke="#888"/>'
        f'<text x="{left - 4}" y="14" text-anchor="end">{top:g}{escape(unit)}</text>'
        f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>'
    )


def _legend(names: list[str], height: int) -> list[str]:
    return [
        f'<rect x="{40 + i * 140}" y="{height - 14}" width="10" height="10" '
        f'fill="{COLORS[i % len(COLORS)]}"/>'
        f'<text x="{54 + i * 140}" y="{height - 5}">{escape(name)}</text>'
        for i, name in enumerate(names)
    ]


def _svg(width: int, height: int, parts: list[str]) -> Markup:
    return Markup(
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-size="10" role="img">{"".join(parts)}</svg>'
    )


def charts(data: Report) -> dict[str, Markup]:
    days = [d.day.strftime("%m-%d") for d in data.days]
    groups = list(data.groups.items()) or [("all", data.overall)]
    return {
        "tickets per day": bar_chart(
            days,
            [
                ("created", [d.created for d in data.days]),
                ("resolved", [d.resolved for d in data.days]),
            ],
        ),
        "first response times": bar_chart(
            [label for label, _ in data.first_response_histogram],
            [("tickets", [n for _, n in data.first_response_histogram])],
        ),
        "SLA compliance": bar_chart(
            [name for name, _ in groups],
            [
                ("first response", [100 * (f.first_response_within_sla or 0) for _, f in groups]),
                ("resolution", [100 * (f.resolution_within_sla or 0) for _, f in groups]),
            ],
            unit="%",
        ),
        "backlog at end of day": line_chart(days, [d.backlog for d in data.days]),
        "CSAT by day": line_chart(
            days,
            [
                100 * d.satisfied / d.surveys_answered if d.surveys_answered else None
                for d in data.days
            ],
            unit="%",
        ),
    }


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
