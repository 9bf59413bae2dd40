"""SVG charts drawn inline (no scripts), so the report page works mailed or offline."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from postdesk.store.figures import Day, Report

COLORS = ("#3867d6", "#20bf6b", "#eb3b5a")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 230, 44, 44, 12


def nice_ticks(top: float) -> list[float]:
    """0 and four or five round steps (1, 2, 2.5 or 5 times a power of ten) reaching ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if step < 1 and top >= 1:
        step = 1.0
    count = math.ceil(top / step - 1e-9)
    return [i * step for i in range(count + 1)]


def bar_chart(
    labels: list[str],
    series: list[tuple[str, list[float]]],
    unit: str = "",
    empty: str | None = None,
    top: float = 0,
) -> Markup:
    """Grouped vertical bars, one colour per series, with a legend and the values on hover;
    ``empty`` (a sentence) draws the axes and says why there is nothing to show; ``top``
    fixes the scale (100 for shares)."""
    ticks = nice_ticks(top or max((v for _, values in series for v in values), default=0))
    slot = (WIDTH - LEFT) / max(len(labels), 1)
    bar = slot * 0.8 / max(len(series), 1)
    parts = _axes(ticks, unit)
    if empty is not None:
        return _svg([*parts, _empty(empty)])
    for s, (name, values) in enumerate(series):
        for i, value in enumerate(values):
            h = _height(value, ticks)
            x = LEFT + i * slot + slot * 0.1 + s * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}">'
                f"<title>{escape(name)} {escape(labels[i])}: {value:g}{escape(unit)}</title></rect>"
            )
    parts += _labels(labels, slot)
    parts += _legend([name for name, _ in series])
    return _svg(parts)


def line_chart(
    labels: list[str],
    values: list[float | None],
    unit: str = "",
    empty: str = "nothing in this period",
    top: float = 0,
) -> Markup:
    """A line over days; days without a value (no survey answered) leave a gap, and with no
    value at all ``empty`` says so."""
    ticks = nice_ticks(top or max((v for v in values if v is not None), default=0))
    slot = (WIDTH - LEFT) / max(len(labels), 1)
    parts = _axes(ticks, unit)
    points = [
        (LEFT + (i + 0.5) * slot, HEIGHT - BOTTOM - _height(v, ticks), v, i)
        for i, v in enumerate(values)
        if v is not None
    ]
    if not points:
        return _svg([*parts, _empty(empty)])
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>')
    for x, y, v, i in points:
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLORS[0]}">'
            f"<title>{escape(labels[i])}: {v:g}{escape(unit)}</title></circle>"
        )
    parts += _labels(labels, slot)
    return _svg(parts)


def _height(value: float, ticks: list[float]) -> float:
    return (HEIGHT - BOTTOM - TOP) * value / ticks[-1]


def _axes(ticks: list[float], unit: str) -> list[str]:
    """The axes, and a labelled grid line at every tick."""
    base = HEIGHT - BOTTOM
    parts = [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#888"/>']
    for tick in ticks:
        y = base - _height(tick, ticks)
        if tick:
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}" stroke="#eee"/>'
            )
        parts.append(
            f'<text x="{LEFT - 5}" y="{y + 3:.1f}" text-anchor="end">{tick:g}{escape(unit)}</text>'
        )
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#888"/>')
    return parts


def _labels(labels: list[str], slot: float) -> list[str]:
    """Category labels under the axis; every n-th one when there are too many to read."""
    step = max(1, math.ceil(len(labels) / 10))
    return [
        f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{HEIGHT - BOTTOM + 15}" '
        f'text-anchor="middle">{escape(labels[i])}</text>'
        for i in range(0, len(labels), step)
    ]


def _empty(text: str) -> str:
    return (
        f'<text x="{(LEFT + WIDTH) / 2:.0f}" y="{(HEIGHT - BOTTOM) / 2 + TOP:.0f}" '
        f'text-anchor="middle" font-size="13" class="empty">{escape(text)}</text>'
    )


def _legend(names: list[str]) -> list[str]:
    return [
        f'<rect x="{LEFT + i * 140}" y="{HEIGHT - 14}" width="10" height="10" '
        f'fill="{COLORS[i % len(COLORS)]}"/>'
        f'<text x="{LEFT + 14 + i * 140}" y="{HEIGHT - 5}">{escape(name)}</text>'
        for i, name in enumerate(names)
    ]


def _svg(parts: list[str]) -> Markup:
    return Markup(
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'font-size="10" role="img">{"".join(parts)}</svg>'
    )


def day_label(day: Day, many: bool) -> str:
    """ "Mon 16 Nov" for a week; "16 Nov" when a month's days must fit."""
    return day.day.strftime("%d %b" if many else "%a %d %b").lstrip("0")


def charts(data: Report) -> dict[str, Markup]:
    days = [day_label(d, len(data.days) > 10) for d in data.days]
    groups = list(data.groups.items()) or [("all", data.overall)]
    answered = [(name, f) for name, f in groups if f.first_response.count or f.resolved]
    histogram: list[float] = [n for _, n in data.first_response_histogram]
    return {
        "tickets per day": bar_chart(
            days,
            [
                ("created", [d.created for d in data.days]),
                ("resolved", [d.resolved for d in data.days]),
            ],
            empty=None if any(d.created or d.resolved for d in data.days) else "no tickets yet",
        ),
        "first response times": bar_chart(
            [label for label, _ in data.first_response_histogram],
            [("tickets", histogram)],
            empty=None if any(histogram) else "no first responses yet",
        ),
        "SLA compliance": bar_chart(
            [name for name, _ in answered],
            [
                ("first response", [100 * (f.first_response_within_sla or 0) for _, f in answered]),
                ("resolution", [100 * (f.resolution_within_sla or 0) for _, f in answered]),
            ],
            unit="%",
            empty=None if answered else "no answers yet",
            top=100,
        ),
        "backlog at end of day": line_chart(
            days, [d.backlog for d in data.days], empty="no open tickets"
        ),
        "CSAT by day": line_chart(
            days,
            [
                100 * d.satisfied / d.surveys_answered if d.surveys_answered else None
                for d in data.days
            ],
            unit="%",
            empty="no survey answers yet",
            top=100,
        ),
    }
