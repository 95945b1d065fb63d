"""What per-reviewer statistics and the daily cap count: decisions, by reviewer.

A reviewer is a surface and a user id there (``"slack:U01AAA"``, the actor key that
quorum uses). The counting is plain ``GROUP BY`` over ``decisions`` joined to
``items`` (for the route and the gold answer), in a window over the indexed
``decisions.at``; medians and grading are left to the caller, in Python, so SQLite and
PostgreSQL give the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Any, NamedTuple

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Decision, Item


class DecisionCount(NamedTuple):
    """How many decisions of one kind a reviewer made in the window."""

    surface: str
    actor_id: str
    actor_name: str  # one name per reviewer (the greatest, should it have changed)
    action: str
    gold_expected: str | None  # the known answer when the item was a gold item
    rubber_stamp: bool
    today: bool  # made on or after the start of today
    number: int  # of decisions


class DecisionTime(NamedTuple):
    """One decision's timing: posted → decided, and opened → decided where known."""

    surface: str
    actor_id: str
    since_posted_seconds: float
    opened_seconds: float | None


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def split_actor_key(actor_key: str) -> tuple[str, str]:
    """``"surface:user id"`` as (surface, user id); ValueError for anything else."""
    surface, sep, user_id = actor_key.partition(":")
    if not sep or not surface or not user_id:
        raise ValueError(f"actor_key must be 'surface:user id', not {actor_key!r}")
    return surface, user_id


def start_of_day(now: datetime) -> datetime:
    """Midnight of ``now``'s calendar day in ``now``'s own timezone."""
    _aware("now", now)
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


async def decision_counts(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    actions: Sequence[str],
    since: datetime,
    today_start: datetime,
) -> list[DecisionCount]:
    """Decisions with one of ``actions`` made at or after ``since`` on ``routes``
    (None: every route), counted per reviewer, action, gold answer, rubber-stamp flag
    and whether they were made today (at or after ``today_start``)."""
    _aware("since", since)
    _aware("today_start", today_start)
    today = case((col(Decision.at) >= today_start, True), else_=False).label("today")
    query: Any = (
        sa_select(
            col(Decision.surface),
            col(Decision.actor_id),
            func.max(col(Decision.actor_name)),
            col(Decision.action),
            col(Item.gold_expected),
            col(Decision.rubber_stamp),
            today,
            func.count(),
        )
        .select_from(Decision)
        .join(Item, col(Item.id) == col(Decision.item_id))
        .where(col(Decision.at) >= since, col(Decision.action).in_(list(actions)))
        .group_by(
            col(Decision.surface),
            col(Decision.actor_id),
            col(Decision.action),
            col(Item.gold_expected),
            col(Decision.rubber_stamp),
            today,
        )
    )
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    rows = (await session.exec(query)).all()
    return [
        DecisionCount(
            surface=surface,
            actor_id=actor_id,
            actor_name=name,
            action=action,
            gold_expected=gold,
            rubber_stamp=bool(stamp),
            today=bool(is_today),
            number=int(count),
        )
        for surface, actor_id, name, action, gold, stamp, is_today, count in rows
    ]


async def decision_times(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    actions: Sequence[str],
    since: datetime,
) -> list[DecisionTime]:
    """The timing of every decision ``decision_counts`` counts, for medians."""
    _aware("since", since)
    query: Any = (
        sa_select(
            col(Decision.surface),
            col(Decision.actor_id),
            col(Decision.since_posted_seconds),
            col(Decision.opened_seconds),
        )
        .select_from(Decision)
        .join(Item, col(Item.id) == col(Decision.item_id))
        .where(col(Decision.at) >= since, col(Decision.action).in_(list(actions)))
    )
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    return [DecisionTime(*row) for row in (await session.exec(query)).all()]


async def decisions_since(
    session: AsyncSession, *, route: str, surface: str, actor_id: str, since: datetime
) -> int:
    """How many decisions this reviewer made on ``route`` at or after ``since``."""
    _aware("since", since)
    query: Any = (
        sa_select(func.count())
        .select_from(Decision)
        .join(Item, col(Item.id) == col(Decision.item_id))
        .where(
            col(Decision.surface) == surface,
            col(Decision.actor_id) == actor_id,
            col(Decision.at) >= since,
            col(Item.route) == route,
        )
    )
    return int((await session.exec(query)).one()[0])


async def capped(
    session: AsyncSession, *, route: str, actor_key: str, now: datetime, cap: int | None
) -> bool:
    """Whether reviewer ``actor_key`` (``"surface:user id"``) has made ``cap`` or more
    decisions on ``route`` today; never with ``cap`` None.

    "Today" is ``now``'s calendar day in ``now``'s own timezone: pass ``now`` in the
    route's working-hours timezone for a local day (``bot.reviewer_stats.route_now``),
    in UTC for a UTC day.
    """
    if cap is None:
        return False
    surface, user_id = split_actor_key(actor_key)
    made = await decisions_since(
        session, route=route, surface=surface, actor_id=user_id, since=start_of_day(now)
    )
    return made >= cap
