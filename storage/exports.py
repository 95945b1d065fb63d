"""The streaming reads behind the training exports (:mod:`bot.export`).

Each function returns one keyset page: at most ``limit`` rows after the key of the
previous page (``after``), in key order, so a walk over a million rows costs the same
per page at its end as at its start and never holds more than one page. They select
only the columns an export needs, with SQLAlchemy Core (plain rows, no ORM objects), and
JSON columns as their JSON text: the export decodes only what it has to and copies the
rest (the prompt) into its rows as it is.

Items that are gold (known-answer checks of reviewers, ``gold_expected`` set) are never
exported: they measure reviewers, and a wrong answer to one must not become training
data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, Text, and_, case, cast, or_, select, true
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Decision, Item

_items: Table = SQLModel.metadata.tables[Item.__tablename__]
_decisions: Table = SQLModel.metadata.tables[Decision.__tablename__]

# _WALK: pages of items walk the primary key (``id > after ORDER BY id``). The queries say
# nothing about ``state``, which the outcome implies: a condition on it lets SQLite pick an
# index on ``state`` instead and sort every matching row again for each page.

HUMAN_APPROVALS = ("approved", "edited")
"""Outcomes of items a person approved (as submitted, or edited)."""
PREFERENCE_CHOICES = ("a", "b")
"""Comparison choices that prefer one candidate (``tie`` and ``both_bad`` do not)."""


async def released_items(
    session: AsyncSession,
    *,
    kinds: Sequence[str],
    after: str | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Row[Any]]:
    """Items of ``kinds`` a person approved or edited, by id: ``(id, kind, prompt,
    final_content)``. ``since`` keeps items decided at or after it."""
    i = _items.c
    query = select(i.id, i.kind, _text(i.prompt), _text(i.final_content)).where(
        i.outcome.in_(HUMAN_APPROVALS),  # (so the state is approved; see _WALK)
        i.kind.in_(list(kinds)),
        i.gold_expected.is_(None),
    )
    if since is not None:
        query = query.where(i.decided_at >= since)
    query = query.where(*_scope(route=route, integrator_id=integrator_id))
    if after is not None:
        query = query.where(i.id > after)
    return await _page(session, query.order_by(i.id).limit(limit))


async def preference_decisions(
    session: AsyncSession,
    *,
    after: int | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Row[Any]]:
    """The decisions that say one output is better than another, by decision id:
    every edit of an item that ended approved, and every settled comparison whose
    choice is ``a`` or ``b``. Rows: ``(decision_id, kind, prompt, choice,
    content_before, content_after, comparison)``; ``comparison`` is the item's content
    for comparisons only (other kinds leave it out: the large column is not read).
    ``since`` keeps decisions made at or after it."""
    i, d = _items.c, _decisions.c
    is_comparison = i.kind == "comparison"
    query = (
        select(
            d.id,
            i.kind,
            _text(i.prompt),
            d.choice,
            _text(d.content_before),
            _text(d.content_after),
            case((is_comparison, _text(i.content)), else_=None),
        )
        .join_from(_decisions, _items, d.item_id == i.id)
        .where(
            i.gold_expected.is_(None),
            or_(
                and_(d.action == "edit", i.state == "approved"),
                and_(d.decisive == true(), d.choice.in_(PREFERENCE_CHOICES), is_comparison),
            ),
        )
    )
    if since is not None:
        query = query.where(d.at >= since)
    # The walk is over decisions; "+ 0" keeps SQLite from starting at the items of one
    # integrator instead (by ix_items_integrator_id_id) and sorting them for every page.
    query = query.where(*_scope(route=route, integrator_id=integrator_id, indexed=False))
    if after is not None:
        query = query.where(d.id > after)
    return await _page(session, query.order_by(d.id).limit(limit))


async def labelled_items(
    session: AsyncSession,
    *,
    after: str | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Row[Any]]:
    """Items of kind ``label`` a person approved or edited, by id, with who settled
    them: ``(id, route, final_content, decided_at, actor_name)``."""
    i, d = _items.c, _decisions.c
    query = (
        select(i.id, i.route, _text(i.final_content), i.decided_at, d.actor_name)
        .join_from(_items, _decisions, and_(d.item_id == i.id, d.decisive == true()))
        .where(
            i.kind == "label",
            i.outcome.in_(HUMAN_APPROVALS),  # (so the state is approved; see _WALK)
            i.gold_expected.is_(None),
        )
    )
    if since is not None:
        query = query.where(i.decided_at >= since)
    query = query.where(*_scope(route=route, integrator_id=integrator_id))
    if after is not None:
        query = query.where(i.id > after)
    return await _page(session, query.order_by(i.id).limit(limit))


def _text(column: ColumnElement[Any]) -> ColumnElement[str]:
    """A JSON column as its JSON text (SQL NULL stays None)."""
    return cast(column, Text)


def _scope(
    *, route: str | None, integrator_id: int | None, indexed: bool = True
) -> list[ColumnElement[bool]]:
    where = []
    if route is not None:
        where.append(_items.c.route == route)
    if integrator_id is not None:
        owner = _items.c.integrator_id if indexed else _items.c.integrator_id + 0
        where.append(owner == integrator_id)
    return where


async def _page(session: AsyncSession, query: Select[*tuple[Any, ...]]) -> Sequence[Row[Any]]:
    # Core on the session's connection: plain rows, none of the ORM's per-row work.
    connection = await session.connection()
    rows: Sequence[Row[Any]] = (await connection.execute(query)).all()
    return rows
