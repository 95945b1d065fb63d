"""The audit log: every decision with its item, newest first, filtered and paginated.

Pages are keyset-paginated on the decision id (``before_id``), so a page costs the same
at the end of a long history as at its start, and a walk over every decision never
holds more than one page. :func:`decisions_page` returns the stored objects without their
large JSON columns (item content, metadata, the decision's content before and after):
touching those raises. :func:`decision_records` returns only the export's columns as
plain rows, for walks over many pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import RowMapping, Select, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import QueryableAttribute, defer
from sqlalchemy.orm.interfaces import LoaderOption
from sqlmodel import col, select
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


def _skip(attribute: object) -> LoaderOption:
    """Do not load this (large JSON) column; touching it later raises."""
    return defer(cast("QueryableAttribute[Any]", attribute), raiseload=True)


async def decisions_page(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    route: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[tuple[Decision, Item]]:
    """Decisions joined with their item, newest (highest id) first, at most ``limit``.

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
    query = (
        select(Decision, Item)
        .join(Item, col(Decision.item_id) == col(Item.id))
        .options(
            _skip(Item.content),
            _skip(Item.final_content),
            _skip(Item.meta),
            _skip(Decision.content_before),
            _skip(Decision.content_after),
        )
    )
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
    rows = (await session.exec(query)).all()
    return [(decision, item) for decision, item in rows]


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
    """Like :func:`decisions_page` (same filters, order and pages), but only the columns
    of the audit export, as plain rows keyed by :data:`RECORD_COLUMNS`: no ORM objects,
    so a large page stays small in memory (for exports)."""
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
