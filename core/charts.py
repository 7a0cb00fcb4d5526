"""Charts as inline SVG, drawn on the server: no script and no CDN, readable by tests and screen readers.

Each chart carries its data too (`data-*` attributes and <title> elements), so what it shows
can be checked without reading pixels.
"""

from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 640, 220, 36
COLOURS = ("#2c7be5", "#e55353", "#8a8a8a", "#2eb85c", "#f9b115", "#6f42c1")


def _number(value) -> float:
    return float(value) if value is not None else 0.0


def line_chart(*, name: str, labels: list[str], series: list[tuple[str, list]], caption: str) -> SafeString:
    """Lines over shared x labels (days); a None value breaks nothing, it is drawn as a gap."""
    values = [_number(v) for _, points in series for v in points if v is not None]
    top = max(values, default=0) or 1.0
    steps = max(len(labels) - 1, 1)

    def xy(index, value):
        x = PAD + (WIDTH - 2 * PAD) * index / steps
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * _number(value) / top
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg class="cible-chart" data-chart="{escape(name)}" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{escape(caption)}</title>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#ccc"/>',
        f'<text x="4" y="{PAD - 8}" font-size="11">{escape(_fmt(top))}</text>',
    ]
    if labels:
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 10}" font-size="11">{escape(labels[0])}</text>')
        parts.append(
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" font-size="11" text-anchor="end">{escape(labels[-1])}</text>'
        )
    for index, (label, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        drawn = " ".join(xy(i, v) for i, v in enumerate(points) if v is not None)
        data = ",".join("" if v is None else _fmt(v) for v in points)
        parts.append(
            f'<polyline class="cible-series" data-series="{escape(label)}" data-values="{escape(data)}" '
            f'fill="none" stroke="{colour}" stroke-width="2" points="{drawn}"><title>{escape(label)}</title></polyline>'
        )
        parts.append(
            f'<text x="{WIDTH - PAD - 150}" y="{14 + 14 * index}" font-size="11" fill="{colour}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is escaped


def bar_chart(*, name: str, bars: list[tuple[str, object]], caption: str, unit: str = "") -> SafeString:
    """Horizontal bars, one per label; an empty value (a KPI with a zero denominator) shows as "n/a"."""
    top = max((_number(v) for _, v in bars if v is not None), default=0) or 1.0
    row = 22
    height = max(row * len(bars) + 10, 40)
    parts = [
        f'<svg class="cible-chart" data-chart="{escape(name)}" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}"><title>{escape(caption)}</title>'
    ]
    for index, (label, value) in enumerate(bars):
        y = 5 + index * row
        width = 0 if value is None else (WIDTH - 260) * _number(value) / top
        shown = "n/a" if value is None else f"{_fmt(value)}{unit}"
        parts.append(
            f'<g class="cible-bar" data-label="{escape(label)}" data-value="{escape("" if value is None else _fmt(value))}">'
            f'<text x="0" y="{y + 14}" font-size="12">{escape(label[:28])}</text>'
            f'<rect x="190" y="{y}" width="{width:.1f}" height="16" fill="{COLOURS[0]}"/>'
            f'<text x="{195 + width:.1f}" y="{y + 13}" font-size="11">{escape(shown)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is escaped


def _fmt(value) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
