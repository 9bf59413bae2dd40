"""SVG charts drawn inline (no scripts), so the report page works mailed or offline."""

from __future__ import annotations

from markupsafe import Markup, escape

from postdesk.store.figures import Report

COLORS = ("#3867d6", "#20bf6b", "#eb3b5a")


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
