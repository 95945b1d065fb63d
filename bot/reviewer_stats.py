"""Per-reviewer statistics and the daily cap.

For each reviewer (a surface and a user id there) over a window (30 days unless told):
decisions, approval rate, median time to decide, rubber stamps, accuracy on gold
items and decisions today. Shown on the web dashboard and by ``signoff stats``.

A route's ``review.daily_cap`` refuses a reviewer's next decision on that route once
they have made that many today (the UTC day, or the day in the route's working-hours
timezone); the review queue skips them too (:func:`storage.reviewer_stats.capped`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.gold import grade
from bot.ports import Actor
from bot.routes import Route
from bot.states import HUMAN_ACTIONS, Action
from storage import reviewer_stats as store
from storage.db import SessionFactory

DEFAULT_DAYS = 30
MAX_DAYS = 366
NO_VALUE = "\N{EM DASH}"


@dataclass(frozen=True, slots=True)
class ReviewerStats:
    """One reviewer's numbers over the window.

    ``median_seconds`` is the median time to decide: opened → decided where the surface
    reports when the reviewer opened the item, else posted → decided. ``approval_rate``
    is approvals and edits over approvals, edits and rejections; ``gold_accuracy`` the
    share of graded gold decisions that were right. Both are None without data.
    """

    surface: str
    user_id: str
    name: str
    decisions: int = 0
    approvals: int = 0  # approve and edit
    rejections: int = 0
    rubber_stamps: int = 0
    gold_graded: int = 0
    gold_correct: int = 0
    today: int = 0
    median_seconds: float | None = None

    @property
    def key(self) -> str:
        return f"{self.surface}:{self.user_id}"

    @property
    def approval_rate(self) -> float | None:
        verdicts = self.approvals + self.rejections
        return self.approvals / verdicts if verdicts else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_graded if self.gold_graded else None

    @property
    def approval_rate_text(self) -> str:
        return percent(self.approval_rate)

    @property
    def gold_accuracy_text(self) -> str:
        return percent(self.gold_accuracy)

    @property
    def median_text(self) -> str:
        return duration(self.median_seconds)

    def as_json(self) -> dict[str, Any]:
        """Every field and rate, for ``signoff stats --json``."""
        data = asdict(self)
        data["approval_rate"] = self.approval_rate
        data["gold_accuracy"] = self.gold_accuracy
        return data


@dataclass(frozen=True, slots=True)
class ReviewerReport:
    """Every reviewer with a decision in ``[since, until]`` on ``routes`` (None: all
    routes), most decisions first."""

    since: datetime
    until: datetime
    days: int
    routes: tuple[str, ...] | None
    reviewers: tuple[ReviewerStats, ...] = field(default=())

    def table(self) -> list[tuple[str, ...]]:
        """A header and one row per reviewer, as text, for the terminal."""
        rows: list[tuple[str, ...]] = [
            ("REVIEWER", "SURFACE", "DECISIONS", "APPROVED", "MEDIAN", "STAMPS", "GOLD", "TODAY")
        ]
        for r in self.reviewers:
            gold = f"{r.gold_accuracy_text} ({r.gold_correct}/{r.gold_graded})"
            rows.append(
                (
                    f"{r.name} ({r.user_id})" if r.name != r.user_id else r.name,
                    r.surface,
                    str(r.decisions),
                    r.approval_rate_text,
                    r.median_text,
                    str(r.rubber_stamps),
                    gold if r.gold_graded else NO_VALUE,
                    str(r.today),
                )
            )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": self.days,
            "routes": list(self.routes) if self.routes is not None else None,
            "reviewers": [r.as_json() for r in self.reviewers],
        }


def percent(value: float | None) -> str:
    """A share as a whole percentage ("42 %"), or a dash for None."""
    return NO_VALUE if value is None else f"{round(value * 100)} %"


def duration(seconds: float | None) -> str:
    """A duration for people: "45 s", "4.5 min", "2 h", "3 d"; a dash for None."""
    if seconds is None:
        return NO_VALUE
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            value = seconds / size
            text = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"
            return f"{text} {unit}"
    return f"{seconds:.0f} s"


def route_now(route: Route | None, now: datetime) -> datetime:
    """``now`` in the timezone whose calendar day a route's daily cap counts: its
    working hours' timezone if it has working hours, else UTC."""
    if route is not None and route.working_hours is not None:
        return now.astimezone(ZoneInfo(route.working_hours.timezone))
    return now.astimezone(UTC)


def _actions() -> list[str]:
    return sorted(a.value for a in HUMAN_ACTIONS)


async def reviewer_stats(
    sessions: SessionFactory,
    *,
    routes: Sequence[str] | None,
    now: datetime,
    days: int = DEFAULT_DAYS,
) -> ReviewerReport:
    """Per-reviewer numbers for decisions on ``routes`` (None: every route) in the last
    ``days`` days up to ``now``; "today" is the UTC day of ``now``. ValueError for a
    naive ``now`` or ``days`` outside 1..366."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be in 1..{MAX_DAYS}, not {days}")
    since = now - timedelta(days=days)
    today_start = store.start_of_day(now.astimezone(UTC))
    async with sessions() as session:
        counts = await store.decision_counts(
            session, routes=routes, actions=_actions(), since=since, today_start=today_start
        )
        times = await store.decision_times(session, routes=routes, actions=_actions(), since=since)

    tallies: dict[tuple[str, str], dict[str, Any]] = {}
    for row in counts:
        t = tallies.setdefault(
            (row.surface, row.actor_id),
            defaultdict(int, surface=row.surface, user_id=row.actor_id, name=row.actor_name),
        )
        t["name"] = max(t["name"], row.actor_name)
        t["decisions"] += row.number
        if row.action in (Action.approve, Action.edit):
            t["approvals"] += row.number
        elif row.action in (Action.reject, Action.redraft):
            t["rejections"] += row.number
        if row.rubber_stamp:
            t["rubber_stamps"] += row.number
        if row.today:
            t["today"] += row.number
        if row.gold_expected is not None:
            right = grade(action=row.action, expected=row.gold_expected)
            if right is not None:
                t["gold_graded"] += row.number
                t["gold_correct"] += row.number if right else 0

    waits: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    for timing in times:
        seconds = timing.since_posted_seconds
        if timing.opened_seconds is not None:
            seconds = min(seconds, timing.opened_seconds)
        waits[(timing.surface, timing.actor_id)].append(seconds)

    reviewers = [
        ReviewerStats(**t, median_seconds=statistics.median(waits[k]) if waits[k] else None)
        for k, t in tallies.items()
    ]
    reviewers.sort(key=lambda r: (-r.decisions, r.key))
    return ReviewerReport(
        since=since,
        until=now,
        days=days,
        routes=tuple(routes) if routes is not None else None,
        reviewers=tuple(reviewers),
    )


async def check_daily_cap(
    session: AsyncSession, *, route: Route, actor: Actor, now: datetime
) -> None:
    """NotAllowed once ``actor`` has made the route's ``review.daily_cap`` decisions
    today on it; nothing without a cap."""
    cap = route.review.daily_cap
    if cap is None:
        return
    if await store.capped(
        session, route=route.name, actor_key=actor.key, now=route_now(route, now), cap=cap
    ):
        raise NotAllowed(
            f"{actor.name} has reached the daily cap of {cap} decisions on route "
            f"{route.name!r}; others will take it"
        )
