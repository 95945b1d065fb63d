"""The review queue's queries: the most uncertain free items, and reserving one.

An item is *held* while ``reserved_until`` is in the future. It is *free* for a
reviewer when nobody holds it, the reviewer holds it, or its holder has already voted
on it (under a quorum the item stays pending after a vote; the holder is done with it).
Reserving is a conditional update on that same condition, so of two callers racing for
one item exactly one gets it, on SQLite and on PostgreSQL alike (PostgreSQL re-checks
the condition on the row the other transaction wrote).

Uncertainty is ``|confidence - boundary|`` with each route's own boundary, computed in
SQL over the pending items of the caller's routes (index ``ix_items_state_route``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, false, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Decision, Item

PENDING = "pending"
# |confidence - boundary| is compared in steps of 1e-9: equal distances on either side
# of the boundary (0.4 and 0.6 around 0.5) then tie and go to the older item, instead of
# being ordered by floating-point noise.
_SCALE = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Lane:
    """One route as the queue reads it: its decision boundary, and requesters whose
    items this reviewer is not served (their own, where the route forbids approving
    them)."""

    route: str
    boundary: float
    skip_requested_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Holder:
    """Who asks: ``surface`` and ``user_id`` as decisions record them."""

    surface: str
    user_id: str

    @property
    def key(self) -> str:
        """``surface:user_id``, as stored in ``items.reserved_by``."""
        return f"{self.surface}:{self.user_id}"


def _free_for(holder: Holder, now: datetime) -> Any:
    holder_voted = exists().where(
        col(Decision.item_id) == col(Item.id),
        (col(Decision.surface) + ":" + col(Decision.actor_id)) == col(Item.reserved_by),
    )
    return or_(
        col(Item.reserved_until).is_(None),
        col(Item.reserved_until) <= now,
        col(Item.reserved_by) == holder.key,
        holder_voted,
    )


def _in_lanes(lanes: Sequence[Lane]) -> Any:
    per_lane = []
    for lane in lanes:
        condition = col(Item.route) == lane.route
        if lane.skip_requested_by:
            condition = and_(
                condition,
                or_(
                    col(Item.requested_by).is_(None),
                    col(Item.requested_by).not_in(list(lane.skip_requested_by)),
                ),
            )
        per_lane.append(condition)
    return or_(*per_lane) if per_lane else false()


def _uncertainty(lanes: Sequence[Lane]) -> Any:
    """Distance from the route's boundary in 1e-9 steps; -1 (first) without a confidence."""
    distance = case(
        *(
            (col(Item.route) == lane.route, func.abs(col(Item.confidence) - lane.boundary))
            for lane in lanes
        ),
        else_=None,
    )
    # ROUND(x) (to a whole number) reads the same on SQLite and PostgreSQL
    return func.coalesce(func.round(distance * _SCALE), -1)


async def candidates(
    session: AsyncSession,
    *,
    lanes: Sequence[Lane],
    holder: Holder,
    now: datetime,
    limit: int,
) -> list[Item]:
    """Pending items of ``lanes`` free for ``holder`` that ``holder`` has not decided on:
    the holder's own unexpired reservations first, then the most uncertain (no
    confidence counts as most uncertain), ties to the oldest."""
    if not lanes:
        return []
    already_voted = exists().where(
        col(Decision.item_id) == col(Item.id),
        col(Decision.surface) == holder.surface,
        col(Decision.actor_id) == holder.user_id,
    )
    mine = case(
        (and_(col(Item.reserved_by) == holder.key, col(Item.reserved_until) > now), 0),
        else_=1,
    )
    query = (
        select(Item)
        .where(
            col(Item.state) == PENDING,
            col(Item.route).in_([lane.route for lane in lanes]),
            _in_lanes(lanes),
            _free_for(holder, now),
            ~already_voted,
        )
        .order_by(mine, _uncertainty(lanes), col(Item.created_at), col(Item.id))
        .limit(limit)
    )
    return list((await session.exec(query.execution_options(populate_existing=True))).all())


async def reserve(
    session: AsyncSession, *, item_id: str, holder: Holder, until: datetime, now: datetime
) -> bool:
    """Hold the item for ``holder`` until ``until``, only if it is still pending and free
    for them; False when someone else got it first. The caller commits."""
    stmt = (
        update(Item)
        .where(col(Item.id) == item_id, col(Item.state) == PENDING, _free_for(holder, now))
        .values(reserved_by=holder.key, reserved_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool((await session.exec(stmt)).rowcount == 1)
