"""The uncertainty-first review queue: the pending item a reviewer's minutes teach most.

``ReviewQueue.next`` hands a reviewer the pending item whose confidence is closest to
its route's decision boundary (the midpoint of ``auto_reject_below`` and
``auto_approve_at`` when both are set, else the one that is set, else 0.5). An item
without a confidence counts as the most uncertain of all, so a route whose integrator
sends no confidences is served oldest first. Ties go to the oldest item.

The item is reserved for the reviewer for the route's ``review.reserve_minutes``: other
callers of ``next`` skip it until the reservation runs out, and the holder asking again
gets the same item back. A reservation only steers ``next``; anyone allowed may still
decide the item from its card. Under a quorum, a holder who has voted no longer holds
the item, so the next reviewer gets it at once.

Only items the reviewer could act on are served: routes where ``route.may_decide``
admits them and whose ``review.daily_cap`` they have not reached today, not items they
already voted on, and not their own items where the route forbids approving them. Every
kind goes through the queue, ``label`` items included. The boundary follows the
thresholds in force (the drift alarm may have raised ``auto_approve_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.errors import Conflict, NotAllowed, NotFound
from bot.overrides import ThresholdOverrides
from bot.ports import Actor
from bot.reviewer_stats import check_daily_cap
from bot.routes import RouteTable, Thresholds
from bot.schemas import ItemPublic
from bot.views import item_public
from storage import items as item_store
from storage import queue as queue_store
from storage import reviewers as reviewer_store
from storage.db import SessionFactory
from storage.queue import Holder, Lane

# Candidates read per round. Racing callers each take the best one still free, so one
# round almost always ends with a reservation; another round reads afresh.
_PAGE = 20
_MAX_ROUNDS = 50
ALL_ROUTES = "*"  # a web reviewer given every route (``signoff users create --routes '*'``)


class ReservedItem(ItemPublic):
    """An item as the queue hands it out: held for ``reserved_by`` until ``reserved_until``."""

    reserved_by: str
    reserved_until: datetime


def boundary(thresholds: Thresholds) -> float:
    """Where a route's decision flips: the confidence a reviewer learns most from."""
    approve_at = thresholds.auto_approve_at
    reject_below = thresholds.auto_reject_below
    if approve_at is not None and reject_below is not None:
        return (approve_at + reject_below) / 2
    if approve_at is not None:
        return approve_at
    if reject_below is not None:
        return reject_below
    return 0.5


class ReviewQueue:
    """Hands out pending items, most uncertain first, one reviewer per item at a time."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        clock: Clock,
        thresholds: ThresholdOverrides | None = None,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._clock = clock
        self._thresholds = thresholds

    async def lanes(self, *, reviewer: Actor, routes: Sequence[str] | None = None) -> list[Lane]:
        """The routes ``reviewer`` may decide now (of ``routes``, when given), as the
        store reads them. Unknown route names are ignored."""
        allowed = []
        for name in self._routes.names() if routes is None else sorted(set(routes)):
            route = self._routes.get(name)
            if route is not None and route.may_decide(
                surface=reviewer.surface, user_id=reviewer.user_id, groups=reviewer.groups
            ):
                allowed.append(route)
        capped = set()
        if any(route.review.daily_cap is not None for route in allowed):
            now = self._clock.now()
            async with self._sessions() as session:
                for route in allowed:
                    try:  # at the cap for today: the route's items go to others
                        await check_daily_cap(session, route=route, actor=reviewer, now=now)
                    except NotAllowed:
                        capped.add(route.name)
        lanes = []
        for route in allowed:
            if route.name in capped:
                continue
            # Read after the session above is closed: on SQLite a second open
            # transaction in this process would wait for the first one.
            in_force = (
                await self._thresholds.thresholds(route)
                if self._thresholds is not None
                else route.thresholds
            )
            own = () if route.allow_self_approval else (reviewer.user_id, reviewer.name)
            lanes.append(Lane(route=route.name, boundary=boundary(in_force), skip_requested_by=own))
        return lanes

    async def next(
        self, *, reviewer: Actor, routes: Sequence[str] | None = None
    ) -> ReservedItem | None:
        """Reserve and return the most uncertain pending item for ``reviewer``, or None
        when nothing is waiting for them.

        ``routes`` narrows the routes considered (e.g. a web reviewer's own list);
        None means every route the reviewer may decide. A reviewer holding an unexpired
        reservation gets that item back, with its reservation unchanged.
        """
        lanes = await self.lanes(reviewer=reviewer, routes=routes)
        if not lanes:
            return None
        holder = Holder(surface=reviewer.surface, user_id=reviewer.user_id)
        for _ in range(_MAX_ROUNDS):
            now = self._clock.now()
            async with self._sessions() as session, session.begin():
                rows = await queue_store.candidates(
                    session, lanes=lanes, holder=holder, now=now, limit=_PAGE
                )
                if not rows:
                    return None
                for row in rows:
                    held = row.reserved_until
                    if row.reserved_by == holder.key and held is not None and held > now:
                        until = held  # already theirs: the same item, the same deadline
                        break
                    until = now + timedelta(minutes=self._reserve_minutes(row.route))
                    if await queue_store.reserve(
                        session, item_id=row.id, holder=holder, until=until, now=now
                    ):
                        break
                else:
                    continue  # every candidate went to someone else meanwhile: read again
                decisions = await item_store.decisions_for(session, item_ids=[row.id])
                item = item_public(row, decisions, self._routes)
            return ReservedItem.model_construct(
                **dict(item), reserved_by=holder.key, reserved_until=until
            )
        raise Conflict("the review queue is changing too fast; try again")

    async def next_for_web_reviewer(self, *, name: str) -> ReservedItem | None:
        """``next`` for the web reviewer ``name``, over the routes they were given;
        NotFound when there is no such reviewer."""
        async with self._sessions() as session:
            found = await reviewer_store.reviewer_by_name(session, name=name)
        if found is None:
            raise NotFound(f"no web reviewer {name!r} (create one with signoff users create)")
        routes = None if ALL_ROUTES in found.routes else list(found.routes)
        return await self.next(
            reviewer=Actor(surface="web", user_id=found.name, name=found.name), routes=routes
        )

    def _reserve_minutes(self, route_name: str) -> float:
        route = self._routes.get(route_name)
        return route.review.reserve_minutes if route is not None else 10.0
