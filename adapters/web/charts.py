"""Charts as server-rendered SVG: no chart service, no script, no CDN.

Each function returns inline ``<svg>`` markup with ``role="img"``, a ``<title>`` and a
fixed-width ``viewBox`` (the height follows the number of rows or legend lines), so CSS
can scale it to its container. Every piece of text is XML-escaped here: labels come
from configuration and user data. Styling that a strict Content-Security-Policy allows
is used only: classes (see ``static/dashboard.css``) and SVG presentation attributes;
never a ``style`` attribute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

EMPTY_TEXT = "No data yet"
DEFAULT_BAR_COLOR = "#3b6ea5"
DEFAULT_SERIES_COLOR = "#8a8f98"

_LABEL_CHARS = 22  # longer labels are shortened; the full text stays in a tooltip
_CHAR_WIDTH = 6.6  # rough width of one character at font-size 11, for the legend


def _e(value: object) -> str:
    return str(escape(str(value)))


def _num(value: float) -> str:
    """A coordinate with at most one decimal, without a trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _plain(value: float) -> str:
    """A value for display: whole numbers without decimals, others with one."""
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"


def _shorten(label: str, limit: int = _LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _open(*, width: int, height: float, title: str, css: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {_e(css)}" '
        f'viewBox="0 0 {width} {_num(height)}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<text class="chart-title" x="0" y="16" font-size="13">{_e(title)}</text>',
    ]


def _empty(*, width: int, title: str, css: str) -> Markup:
    height = 80
    parts = _open(width=width, height=height, title=title, css=css)
    parts.append(
        f'<text class="chart-empty" x="{width // 2}" y="52" text-anchor="middle" '
        f'font-size="12">{_e(EMPTY_TEXT)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    *,
    values: Mapping[str, float],
    title: str,
    color: str = DEFAULT_BAR_COLOR,
    fmt: Callable[[float], str] = _plain,
    width: int = 480,
) -> Markup:
    """Horizontal bars, one per key in the mapping's order, with its label and value.

    Bars are scaled to the largest value; negative values draw as empty bars. An empty
    mapping renders "No data yet". ``fmt`` formats the value printed after each bar.
    """
    css = "chart-bars"
    if not values:
        return _empty(width=width, title=title, css=css)
    top, row, label_w, value_w = 28, 24, 150, 56
    bar_area = width - label_w - value_w
    largest = max(max(values.values()), 0.0)
    height = top + row * len(values) + 4
    parts = _open(width=width, height=height, title=title, css=css)
    for index, (label, value) in enumerate(values.items()):
        y = top + index * row
        length = bar_area * max(value, 0.0) / largest if largest > 0 else 0.0
        shown = fmt(value)
        parts.append(f'<g class="chart-row"><title>{_e(label)}: {_e(shown)}</title>')
        parts.append(
            f'<text class="chart-label" x="{label_w - 8}" y="{y + 16}" text-anchor="end" '
            f'font-size="11">{_e(_shorten(label))}</text>'
        )
        parts.append(
            f'<rect class="chart-bar" x="{label_w}" y="{y + 4}" width="{_num(length)}" '
            f'height="{row - 8}" fill="{_e(color)}"/>'
        )
        parts.append(
            f'<text class="chart-value" x="{_num(label_w + length + 6)}" y="{y + 16}" '
            f'font-size="11">{_e(shown)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend_lines(names: Sequence[str], *, width: int) -> list[list[tuple[str, float]]]:
    """Lay the legend entries out left to right, wrapping at ``width``."""
    lines: list[list[tuple[str, float]]] = [[]]
    x = 0.0
    for name in names:
        entry = 18 + _CHAR_WIDTH * len(_shorten(name)) + 14
        if lines[-1] and x + entry > width:
            lines.append([])
            x = 0.0
        lines[-1].append((name, x))
        x += entry
    return lines


def stacked_bars(
    *,
    days: Sequence[str],
    series: Mapping[str, Sequence[int]],
    colors: Mapping[str, str],
    title: str,
    width: int = 640,
) -> Markup:
    """One column per day, stacked by series in the mapping's order, with a legend.

    ``series`` maps a name to one count per day (same length as ``days``, else
    ValueError). A series without a colour is grey. With no days, or only zeros, the
    chart renders "No data yet".
    """
    for name, counts in series.items():
        if len(counts) != len(days):
            raise ValueError(f"series {name!r} has {len(counts)} values for {len(days)} days")
    css = "chart-stacked"
    totals = [sum(max(counts[i], 0) for counts in series.values()) for i in range(len(days))]
    if not days or not series or max(totals) <= 0:
        return _empty(width=width, title=title, css=css)

    left, right, top, plot_h = 36, 8, 34, 160
    plot_w = width - left - right
    baseline = top + plot_h
    legend = _legend_lines(list(series), width=plot_w)
    legend_top = baseline + 30
    height = legend_top + 16 * len(legend) + 4
    # an even scale keeps the half-way grid line on a whole count
    largest = max(totals) + max(totals) % 2 if max(totals) > 1 else max(totals)
    column = plot_w / len(days)
    bar_w = min(max(column * 0.7, 1.0), 48.0)
    every = math.ceil(len(days) / 16)  # at most 16 day labels

    parts = _open(width=width, height=height, title=title, css=css)
    for fraction in (0.5, 1.0) if largest > 1 else (1.0,):
        y = baseline - plot_h * fraction
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" '
            f'y2="{_num(y)}" stroke="#d0d4da" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="chart-axis" x="{left - 4}" y="{_num(y + 4)}" text-anchor="end" '
            f'font-size="10">{_e(_plain(largest * fraction))}</text>'
        )
    parts.append(
        f'<line class="chart-baseline" x1="{left}" x2="{width - right}" y1="{baseline}" '
        f'y2="{baseline}" stroke="#8a8f98" stroke-width="1"/>'
    )
    for i, day in enumerate(days):
        x = left + column * i + (column - bar_w) / 2
        y = float(baseline)
        parts.append(f'<g class="chart-column"><title>{_e(day)}: {totals[i]}</title>')
        for name, counts in series.items():
            count = max(counts[i], 0)
            if count == 0:
                continue
            h = plot_h * count / largest
            y -= h
            color = colors.get(name, DEFAULT_SERIES_COLOR)
            parts.append(
                f'<rect class="chart-segment" x="{_num(x)}" y="{_num(y)}" '
                f'width="{_num(bar_w)}" height="{_num(h)}" fill="{_e(color)}">'
                f"<title>{_e(day)} · {_e(name)}: {count}</title></rect>"
            )
        parts.append("</g>")
        if i % every == 0:
            parts.append(
                f'<text class="chart-axis" x="{_num(x + bar_w / 2)}" y="{baseline + 14}" '
                f'text-anchor="middle" font-size="10">{_e(_shorten(day, 10))}</text>'
            )
    for line_no, line in enumerate(legend):
        y = legend_top + 16 * line_no
        for name, offset in line:
            x = left + offset
            color = colors.get(name, DEFAULT_SERIES_COLOR)
            parts.append(
                f'<g class="chart-legend"><rect x="{_num(x)}" y="{y - 9}" width="12" '
                f'height="12" fill="{_e(color)}"/><text x="{_num(x + 18)}" y="{y + 1}" '
                f'font-size="11">{_e(_shorten(name))}</text></g>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
