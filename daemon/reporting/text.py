"""The report as a terminal table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Any

from postdesk.store.figures import Durations, Figures, Report


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
        *((f"first response within {k}", share(v)) for k, v in f.first_response_within.items()),
        *((f"resolved within {k}", share(v)) for k, v in f.resolution_within.items()),
        ("escalation rate", share(f.escalation_rate)),
        ("backlog at end", str(f.backlog)),
        ("backlog past SLA", str(f.backlog_past_sla)),
        ("autoreplies sent", str(f.autoreplies_sent)),
        ("autoreplies suppressed", str(sum(f.autoreplies_suppressed.values()))),
        ("surveys sent", str(f.surveys_sent)),
        ("surveys answered", str(f.surveys_answered)),
        ("survey response rate", share(f.survey_response_rate)),
        ("CSAT (satisfied)", share(f.csat)),
        *((("NPS", f"{f.nps:+.0f}"),) if f.nps is not None else ()),
    ]


def title(data: Report) -> str:
    """Whole days read as days ("Mon 16 Nov 2026 - Sun 22 Nov 2026, UTC"), else instants."""
    since, until = data.since, data.until
    if since.timetz().replace(tzinfo=None) == until.timetz().replace(tzinfo=None) == time():
        last = until - timedelta(days=1)
        span = f"{since:%a %d %b %Y}" + (f" - {last:%a %d %b %Y}" if last > since else "")
    else:
        span = f"{since:%Y-%m-%d %H:%M} - {until:%Y-%m-%d %H:%M}"
    return f"Support report, {span} {since.tzname() or ''}".rstrip() + (
        f", by {data.by}" if data.by else ""
    )


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
