"""Calibration on the dashboard: a reliability plot per route, with the thresholds in
force and the ones ``signoff calibrate`` would recommend.

The plot is server-rendered SVG like the other charts (``adapters/web/charts.py``): the
observed accuracy (share of acceptable drafts) of each confidence band at the band's
midpoint, with its 95 % Wilson interval as a bar, against the diagonal a perfectly
calibrated model would follow; the thresholds in force are vertical lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from adapters.web.charts import _e, _empty, _num, _open
from bot.calibration import DEFAULT_TARGET, CalibrationReport, calibration_report
from bot.clock import Clock
from bot.overrides import ThresholdOverrides
from bot.routes import RouteTable
from storage.db import SessionFactory

POINT_COLOR = "#1565c0"
APPROVE_COLOR = "#2e7d32"
REJECT_COLOR = "#c62828"


@dataclass(frozen=True, slots=True)
class CalibrationPanel:
    """One route's calibration on the dashboard."""

    report: CalibrationReport
    plot: Markup


async def calibration_panels(
    sessions: SessionFactory, *, routes: RouteTable, names: list[str], clock: Clock
) -> list[CalibrationPanel]:
    """The panels of the routes in ``names`` that have any verdicts, each against its
    drift target (or 1 % without drift settings)."""
    overrides = ThresholdOverrides(sessions=sessions, clock=clock)
    panels = []
    for name in names:
        route = routes.get(name)
        if route is None:
            continue
        target = route.drift.target_error if route.drift else DEFAULT_TARGET
        report = await calibration_report(
            sessions, route=route, target_error=target, overrides=overrides
        )
        if report.verdicts:
            panels.append(CalibrationPanel(report, reliability_plot(report)))
    return panels


def reliability_plot(report: CalibrationReport, *, width: int = 480) -> Markup:
    """Observed accuracy per confidence band with 95 % intervals, the diagonal, and the
    thresholds in force; "No data yet" without verdicts."""
    title = f"Reliability of {report.route}"
    css = "chart-reliability"
    if not report.verdicts:
        return _empty(width=width, title=title, css=css)
    left, right, top, plot = 40, 12, 30, 240
    height = top + plot + 40
    size = min(plot, width - left - right)

    def x(value: float) -> float:
        return left + size * value

    def y(value: float) -> float:
        return top + plot - plot * value

    parts = _open(width=width, height=height, title=title, css=css)
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{_num(x(1))}" y1="{_num(y(tick))}" '
            f'y2="{_num(y(tick))}" stroke="#d0d4da" stroke-width="1"/>'
            f'<text class="chart-axis" x="{left - 4}" y="{_num(y(tick) + 4)}" '
            f'text-anchor="end" font-size="10">{tick:g}</text>'
            f'<text class="chart-axis" x="{_num(x(tick))}" y="{_num(y(0) + 14)}" '
            f'text-anchor="middle" font-size="10">{tick:g}</text>'
        )
    parts.append(
        f'<text class="chart-axis" x="{_num(x(0.5))}" y="{_num(y(0) + 30)}" '
        f'text-anchor="middle" font-size="11">confidence</text>'
        f'<line class="chart-diagonal" x1="{_num(x(0))}" y1="{_num(y(0))}" x2="{_num(x(1))}" '
        f'y2="{_num(y(1))}" stroke="#8a8f98" stroke-width="1" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text class="chart-axis" x="12" y="{_num(y(0.5))}" text-anchor="middle" '
        f'font-size="11" transform="rotate(-90 12 {_num(y(0.5))})">share acceptable</text>'
    )
    legend = [("perfect calibration", "#8a8f98", "4 3"), ("observed, 95 % interval", "", "")]
    for key, color in (("auto_approve_at", APPROVE_COLOR), ("auto_reject_below", REJECT_COLOR)):
        value = getattr(report.in_force, key)
        if value is None:
            continue
        legend.append((f"{key} {value:g}", color, ""))
        parts.append(
            f'<g class="chart-threshold"><title>{_e(key)} {value:g}</title>'
            f'<line x1="{_num(x(value))}" x2="{_num(x(value))}" y1="{_num(y(1))}" '
            f'y2="{_num(y(0))}" stroke="{color}" stroke-width="1.5"/></g>'
        )
    lx = x(1) + 24
    for n, (label, color, dash) in enumerate(legend):
        ly = top + 8 + 18 * n
        if color:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            mark = (
                f'<line x1="{_num(lx)}" x2="{_num(lx + 16)}" y1="{ly}" y2="{ly}" '
                f'stroke="{color}" stroke-width="1.5"{dashed}/>'
            )
        else:
            mark = f'<circle cx="{_num(lx + 8)}" cy="{ly}" r="4" fill="{POINT_COLOR}"/>'
        parts.append(
            f'<g class="chart-legend">{mark}<text x="{_num(lx + 22)}" y="{ly + 4}" '
            f'font-size="11">{_e(label)}</text></g>'
        )
    for band in report.bands:
        if not band.n or band.accuracy is None:
            continue
        cx = x(band.band.midpoint)
        tip = (
            f"{band.band.label}: {band.acceptable:,} of {band.n:,} acceptable "
            f"({band.accuracy:.1%}), 95% interval {band.low:.1%} to {band.high:.1%}"
        )
        parts.append(
            f'<g class="chart-point"><title>{_e(tip)}</title>'
            f'<line x1="{_num(cx)}" x2="{_num(cx)}" y1="{_num(y(band.low))}" '
            f'y2="{_num(y(band.high))}" stroke="{POINT_COLOR}" stroke-width="2"/>'
            f'<circle cx="{_num(cx)}" cy="{_num(y(band.accuracy))}" r="4" '
            f'fill="{POINT_COLOR}"/></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
