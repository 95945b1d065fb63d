"""What the dashboard counts: pending items, items decided in a window, failed releases.

The queries are plain ``GROUP BY`` and range scans that read the same on SQLite and
PostgreSQL. Anything that differs between the two dialects (truncating timestamps to
days, percentiles) is left to the caller, in Python. Decided items are always read for
a bounded window ``[since, until)`` over ``items.decided_at``, which is indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Audit, Decision, Delivery, Item

POLICY_SURFACE = "policy"


class DecidedRow(NamedTuple):
    """One item settled in the window, with what is needed to count and time it."""

    route: str
    outcome: str
    created_at: datetime
    decided_at: datetime
    by_policy: bool  # the decisive decision came from the policy, not a person


def _check_window(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("the window needs timezone-aware datetimes")
    if until <= since:
        raise ValueError("the window is empty: until must be after since")


async def pending_by_route(
    session: AsyncSession, *, routes: Sequence[str] | None
) -> dict[str, int]:
    """How many items wait for review, per route (``routes`` None: every route).

    Routes without pending items are absent; the caller zero-fills if it wants to.
    """
    query: Any = select(Item.route, func.count()).where(Item.state == "pending")
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    rows = (await session.exec(query.group_by(Item.route))).all()
    return {route: int(count) for route, count in rows}


async def decided_between(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    since: datetime,
    until: datetime,
) -> list[DecidedRow]:
    """Items settled in ``[since, until)``, oldest decision first.

    ``by_policy`` is true when the item's decisive decision was recorded by the policy
    (auto-approve, auto-reject) rather than by a reviewer. Raises ValueError for a naive
    or empty window.
    """
    _check_window(since, until)
    decisive = and_(
        col(Decision.item_id) == col(Item.id),
        col(Decision.decisive).is_(True),
    )
    # five columns: beyond what sqlmodel's typed ``select`` overloads accept
    query: Any = (
        sa_select(
            col(Item.route),
            col(Item.outcome),
            col(Item.created_at),
            col(Item.decided_at),
            col(Decision.surface),
        )
        .select_from(Item)
        .outerjoin(Decision, decisive)
        .where(
            col(Item.decided_at) >= since,
            col(Item.decided_at) < until,
            col(Item.outcome).is_not(None),
        )
    )
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    query = query.order_by(col(Item.decided_at), col(Item.id))
    rows = (await session.exec(query)).all()
    return [
        DecidedRow(
            route=route,
            outcome=outcome,
            created_at=created_at,
            decided_at=decided_at,
            by_policy=surface == POLICY_SURFACE or outcome.startswith("auto_"),
        )
        for route, outcome, created_at, decided_at, surface in rows
    ]


async def release_failures_by_route(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    since: datetime | None = None,
) -> dict[str, int]:
    """How many items have a failed release, per route; with ``since``, only items
    decided at or after it (which keeps the scan on the ``decided_at`` index)."""
    query: Any = select(Item.route, func.count()).where(Item.release_state == "failed")
    if since is not None:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        query = query.where(col(Item.decided_at) >= since)
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    rows = (await session.exec(query.group_by(Item.route))).all()
    return {route: int(count) for route, count in rows}


async def items_by_route_state(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(route, state, count) over all items (an index-only scan of ``(state, route)``)."""
    query: Any = select(Item.route, Item.state, func.count()).group_by(Item.route, Item.state)
    return [(r, s, int(n)) for r, s, n in (await session.exec(query)).all()]


async def deliveries_by_state(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(purpose, state, count) over the outbox."""
    query: Any = select(Delivery.purpose, Delivery.state, func.count()).group_by(
        Delivery.purpose, Delivery.state
    )
    return [(p, s, int(n)) for p, s, n in (await session.exec(query)).all()]


# Upper bounds (seconds) of the time-to-decision histogram, as Prometheus buckets.
DECISION_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 7 * 86400.0)


async def decision_time_histogram(
    session: AsyncSession,
) -> list[tuple[str, list[int], int, float]]:
    """Per route: cumulative counts of settling decisions per bucket of
    ``DECISION_BUCKETS`` (posted → decided), the total count and the sum of seconds."""
    seconds = col(Decision.since_posted_seconds)
    columns: list[Any] = [
        func.sum(case((seconds <= bound, 1), else_=0)) for bound in DECISION_BUCKETS
    ]
    query: Any = (
        sa_select(col(Item.route), *columns, func.count(), func.sum(seconds))
        .join(Item, col(Item.id) == col(Decision.item_id))
        .where(col(Decision.decisive).is_(True))
        .group_by(Item.route)
    )
    rows = (await session.exec(query)).all()
    return [
        (
            row[0],
            [int(n or 0) for n in row[1 : 1 + len(DECISION_BUCKETS)]],
            int(row[-2]),
            float(row[-1] or 0),
        )
        for row in rows
    ]


async def outcomes_by_route(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(route, outcome, count) over settled items."""
    query: Any = (
        select(Item.route, Item.outcome, func.count())
        .where(col(Item.outcome).is_not(None))
        .group_by(col(Item.route), col(Item.outcome))
    )
    return [(r, o, int(n)) for r, o, n in (await session.exec(query)).all()]


async def audits_by_verdict(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(route, verdict or "open", count) over audits of automatic decisions."""
    query: Any = select(Audit.route, Audit.verdict, func.count()).group_by(
        col(Audit.route), col(Audit.verdict)
    )
    return [(r, v or "open", int(n)) for r, v, n in (await session.exec(query)).all()]


async def gold_grades(session: AsyncSession) -> list[tuple[str, bool, int]]:
    """(route, correct, count) over people's settling decisions on gold items."""
    human = col(Decision.action).in_(["approve", "edit", "reject"])
    approved = col(Decision.action).in_(["approve", "edit"])
    correct = case(
        (approved & (col(Item.gold_expected) == "approve"), True),
        (~approved & (col(Item.gold_expected) == "reject"), True),
        else_=False,
    )
    query: Any = (
        sa_select(col(Item.route), correct, func.count())
        .join(Item, col(Item.id) == col(Decision.item_id))
        .where(col(Item.gold_expected).is_not(None), col(Decision.decisive).is_(True), human)
        .group_by(Item.route, correct)
    )
    return [(r, bool(c), int(n)) for r, c, n in (await session.exec(query)).all()]
