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

from sqlalchemy import and_, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Decision, Delivery, Item

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
