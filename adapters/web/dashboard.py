"""The dashboard's numbers: queue depth, decisions per day, time to decision, rates per
route and failed releases, for the routes a reviewer may see.

The database does the counting that reads the same everywhere (``storage.stats``);
days, percentiles and rates are worked out here, in Python, so SQLite and PostgreSQL
give the same answers. Days are UTC calendar days.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from markupsafe import Markup

from adapters.web.charts import bar_chart, stacked_bars
from storage import stats as stats_store
from storage.db import SessionFactory

OUTCOMES: tuple[str, ...] = (
    "approved",
    "edited",
    "rejected",
    "auto_approved",
    "auto_rejected",
    "expired",
)
HUMAN_OUTCOMES: tuple[str, ...] = ("approved", "edited", "rejected")
OUTCOME_LABELS: Mapping[str, str] = {
    "approved": "Approved",
    "edited": "Edited",
    "rejected": "Rejected",
    "auto_approved": "Auto-approved",
    "auto_rejected": "Auto-rejected",
    "expired": "Expired",
}
OUTCOME_COLORS: Mapping[str, str] = {
    "approved": "#2e7d32",
    "edited": "#1565c0",
    "rejected": "#c62828",
    "auto_approved": "#81c784",
    "auto_rejected": "#ef9a9a",
    "expired": "#9e9e9e",
}
NO_VALUE = "\N{EM DASH}"
MAX_DAYS = 90  # the window is read row by row; keep it bounded


@dataclass(frozen=True, slots=True)
class DayCounts:
    """Items settled on one UTC day, per outcome (every outcome present, zero or not)."""

    day: date
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class RouteRates:
    """How a route's items were settled in the window."""

    route: str
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    auto_approved: int = 0
    auto_rejected: int = 0
    expired: int = 0

    @property
    def human(self) -> int:
        """Items a reviewer settled: approved, edited or rejected."""
        return self.approved + self.edited + self.rejected

    def share(self, outcome: str) -> float | None:
        """``outcome``'s share (0 to 1) of the human decisions; None without any."""
        if outcome not in HUMAN_OUTCOMES:
            raise ValueError(f"{outcome!r} is not a human outcome")
        if self.human == 0:
            return None
        count: int = getattr(self, outcome)
        return count / self.human

    def share_text(self, outcome: str) -> str:
        """The share as a whole percentage ("42 %"), or a dash without human decisions."""
        value = self.share(outcome)
        return NO_VALUE if value is None else f"{round(value * 100)} %"


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything the dashboard shows, for one reviewer's routes and one window.

    ``queue_depth`` is the current number of pending items per route (scoped routes
    with none are listed as 0). ``per_day`` has one entry per day of the window, oldest
    first. ``p50_seconds`` / ``p90_seconds`` are the time from submission to the
    decisive human decision (for a quorum, the last approval), by the nearest-rank
    method; None when no human decision falls in the window. ``release_failures``
    counts items decided in the window whose release is ``failed``.
    """

    routes: tuple[str, ...] | None
    since: datetime
    until: datetime
    queue_depth: Mapping[str, int]
    per_day: tuple[DayCounts, ...]
    p50_seconds: float | None
    p90_seconds: float | None
    human_decisions: int
    rates: tuple[RouteRates, ...]
    release_failures: Mapping[str, int]

    @property
    def days(self) -> int:
        return len(self.per_day)

    @property
    def queue_total(self) -> int:
        return sum(self.queue_depth.values())

    @property
    def decided_total(self) -> int:
        return sum(day.total for day in self.per_day)

    @property
    def release_failures_total(self) -> int:
        return sum(self.release_failures.values())

    @property
    def p50_text(self) -> str:
        return format_duration(self.p50_seconds)

    @property
    def p90_text(self) -> str:
        return format_duration(self.p90_seconds)


def percentile(values: Sequence[float], *, pct: int) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``pct`` % of the
    values at or below it (always one of the values); None for no values."""
    if not 0 < pct <= 100:
        raise ValueError("pct must be in 1..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = (pct * len(ordered) + 99) // 100  # ceil(pct / 100 * n) without float error
    return ordered[max(rank, 1) - 1]


def _short(value: float) -> str:
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return text[:-2] if text.endswith(".0") else text


def format_duration(seconds: float | None) -> str:
    """A duration for people: "45 s", "4 min", "2.5 h", "3 d"; a dash for None."""
    if seconds is None:
        return NO_VALUE
    seconds = max(seconds, 0.0)
    if seconds < 59.5:
        return f"{round(seconds)} s"
    if seconds / 60 < 59.5:
        return f"{_short(seconds / 60)} min"
    if seconds / 3600 < 47.5:
        return f"{_short(seconds / 3600)} h"
    return f"{_short(seconds / 86400)} d"


def window(*, now: datetime, days: int) -> tuple[datetime, datetime]:
    """``[since, until)``: the ``days`` UTC days up to and including ``now``'s."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be in 1..{MAX_DAYS}")
    today = now.astimezone(UTC).date()
    since = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
    until = datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC)
    return since, until


async def dashboard_data(
    sessions: SessionFactory,
    *,
    routes: list[str] | None,
    now: datetime,
    days: int = 14,
) -> Dashboard:
    """The dashboard for a reviewer who may see ``routes`` (None: every route), over
    the last ``days`` UTC days up to ``now`` (1..90, else ValueError)."""
    since, until = window(now=now, days=days)
    async with sessions() as session:
        pending = await stats_store.pending_by_route(session, routes=routes)
        decided = await stats_store.decided_between(
            session, routes=routes, since=since, until=until
        )
        failures = await stats_store.release_failures_by_route(session, routes=routes, since=since)

    first = since.date()
    per_day: list[Counter[str]] = [Counter() for _ in range(days)]
    by_route: defaultdict[str, Counter[str]] = defaultdict(Counter)
    waits: list[float] = []
    for row in decided:
        index = (row.decided_at.astimezone(UTC).date() - first).days
        if 0 <= index < days:
            per_day[index][row.outcome] += 1
        by_route[row.route][row.outcome] += 1
        if row.outcome in HUMAN_OUTCOMES and not row.by_policy:
            waits.append(max((row.decided_at - row.created_at).total_seconds(), 0.0))

    depth = {route: 0 for route in routes or ()}
    depth.update(pending)
    rate_routes = sorted(set(by_route) | set(routes or ()))
    return Dashboard(
        routes=tuple(routes) if routes is not None else None,
        since=since,
        until=until,
        queue_depth=dict(sorted(depth.items())),
        per_day=tuple(
            DayCounts(
                day=first + timedelta(days=i),
                counts={outcome: counts[outcome] for outcome in OUTCOMES},
            )
            for i, counts in enumerate(per_day)
        ),
        p50_seconds=percentile(waits, pct=50),
        p90_seconds=percentile(waits, pct=90),
        human_decisions=len(waits),
        rates=tuple(
            RouteRates(route=route, **{o: by_route[route][o] for o in OUTCOMES})
            for route in rate_routes
        ),
        release_failures=dict(sorted(failures.items())),
    )


def day_label(day: date) -> str:
    """A short label for a chart column: "Jan 5"."""
    return f"{day:%b} {day.day}"


def render_context(dash: Dashboard) -> dict[str, object]:
    """The template context of ``dashboard.html``: ``{"dash": dash, "charts": {...}}``.

    ``charts`` holds inline SVG markup under these keys:

    - ``queue_depth``: pending items per route (horizontal bars);
    - ``decisions_per_day``: items settled per day, stacked by outcome, with a legend;
    - ``release_failures``: failed releases per route (horizontal bars).
    """
    series = {
        OUTCOME_LABELS[outcome]: [day.counts[outcome] for day in dash.per_day]
        for outcome in OUTCOMES
    }
    colors = {OUTCOME_LABELS[outcome]: OUTCOME_COLORS[outcome] for outcome in OUTCOMES}
    charts: dict[str, Markup] = {
        "queue_depth": bar_chart(values=dash.queue_depth, title="Queue depth per route"),
        "decisions_per_day": stacked_bars(
            days=[day_label(day.day) for day in dash.per_day],
            series=series,
            colors=colors,
            title=f"Decisions per day, last {dash.days} days",
        ),
        "release_failures": bar_chart(
            values=dash.release_failures,
            title="Failed releases per route",
            color=OUTCOME_COLORS["rejected"],
        ),
    }
    return {"dash": dash, "charts": charts}
