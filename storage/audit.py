"""The audit log: every decision with its item, newest first, filtered and paginated.

Pages are keyset-paginated on the decision id (``before_id``), so a page costs the same
at the end of a long history as at its start, and a walk over every decision never
holds more than one page. :func:`decision_records` returns only the audit's columns as
plain rows, never the large JSON ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import RowMapping, Select, or_
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Decision, Item

# The public outcome word of each decision action, as the API and the audit export
# name it. The ``outcome`` filter takes these words and matches the decision's action.
OUTCOME_ACTIONS: dict[str, str] = {
    "approved": "approve",
    "edited": "edit",
    "rejected": "reject",
    "auto_approved": "auto_approve",
    "auto_rejected": "auto_reject",
    "expired": "expire",
}
ACTION_OUTCOMES: dict[str, str] = {action: word for word, action in OUTCOME_ACTIONS.items()}

_Q = TypeVar("_Q", bound="Select[*tuple[Any, ...]]")


RECORD_COLUMNS: tuple[str, ...] = (
    "decision_id",
    "at",
    "item_id",
    "route",
    "kind",
    "title",
    "action",
    "surface",
    "actor_id",
    "actor_name",
    "reason_code",
    "reason_text",
    "since_posted_seconds",
)
"""The keys of each mapping :func:`decision_records` returns."""


async def decision_records(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    route: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 500,
) -> list[RowMapping]:
    """Decisions joined with their item, newest (highest id) first, at most ``limit``:
    only the audit's columns, as plain rows keyed by :data:`RECORD_COLUMNS` (no ORM
    objects, so a page stays small in memory).

    ``routes`` is what the reader may see (None: every route; empty: nothing).
    ``route`` keeps one route; ``actor`` keeps decisions whose actor name or actor id
    is exactly this string; ``outcome`` is a public outcome word (``approved``,
    ``edited``, ``rejected``, ``auto_approved``, ``auto_rejected``, ``expired``) and
    keeps the decisions whose action it names (see :data:`OUTCOME_ACTIONS`): it is
    the decision's own action, so a below-quorum approval counts as ``approved`` too.
    ``since`` is inclusive and ``until`` exclusive, both on the decision time.
    ``before_id`` continues after the last decision of the previous page.
    Raises ValueError for an unknown outcome word.
    """
    query: Any = sa_select(
        col(Decision.id).label("decision_id"),
        col(Decision.at),
        col(Decision.item_id),
        col(Item.route),
        col(Item.kind),
        col(Item.title),
        col(Decision.action),
        col(Decision.surface),
        col(Decision.actor_id),
        col(Decision.actor_name),
        col(Decision.reason_code),
        col(Decision.reason_text),
        col(Decision.since_posted_seconds),
    ).join(Item, col(Decision.item_id) == col(Item.id))
    query = _filtered(
        query,
        routes=routes,
        route=route,
        actor=actor,
        outcome=outcome,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return list((await session.exec(query)).mappings().all())


def _filtered(
    query: _Q,
    *,
    routes: Sequence[str] | None,
    route: str | None,
    actor: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> _Q:
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    if route is not None:
        query = query.where(col(Item.route) == route)
    if actor is not None:
        query = query.where(or_(col(Decision.actor_name) == actor, col(Decision.actor_id) == actor))
    if outcome is not None:
        try:
            action = OUTCOME_ACTIONS[outcome]
        except KeyError:
            raise ValueError(f"unknown outcome {outcome!r}") from None
        query = query.where(col(Decision.action) == action)
    if since is not None:
        query = query.where(col(Decision.at) >= since)
    if until is not None:
        query = query.where(col(Decision.at) < until)
    if before_id is not None:
        query = query.where(col(Decision.id) < before_id)
    return query.order_by(col(Decision.id).desc()).limit(limit)
