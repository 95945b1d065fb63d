"""The streaming reads behind the training exports (:mod:`bot.export`).

Each function returns one keyset page: at most ``limit`` rows after the key of the
previous page (``after``), in key order, so a walk over a million rows costs the same
per page at its end as at its start and never holds more than one page. They select
only the columns an export needs, with SQLAlchemy Core (plain rows, no ORM objects), and
JSON columns as their JSON text: the export decodes only what it has to and copies the
rest (the prompt) into its rows as it is.

A walk reads its pages one after the other on one connection (:func:`page_reader`),
each page a transaction of its own: nothing is held between pages, and no page pays
for a session, a pool checkout or a liveness ping.

Items that are gold (known-answer checks of reviewers, ``gold_expected`` set) are never
exported: they measure reviewers, and a wrong answer to one must not become training
data.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from storage.db import SessionFactory
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


@contextlib.asynccontextmanager
async def page_reader(sessions: SessionFactory) -> AsyncIterator[AsyncConnection]:
    """A connection of ``sessions``' engine to read a walk's pages on, one at a time."""
    async with sessions() as session:  # (holds no connection until it is used)
        engine = session.bind
    if not isinstance(engine, AsyncEngine):
        raise TypeError("the session factory must be bound to an engine")
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Each SELECT its own transaction: no BEGIN and ROLLBACK round trips a page.
            # (Not on SQLite, where storage.db opens every transaction itself.)
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def released_items(
    conn: AsyncConnection,
    *,
    kinds: Sequence[str],
    after: str | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Sequence[Any]]:
    """Items of ``kinds`` a person approved or edited, by id: ``(id, kind, prompt,
    final_content)``. ``since`` keeps items decided at or after it."""
    shape = _shape(after=after, route=route, since=since, owner=integrator_id)
    params = _params(after=after, limit=limit, route=route, since=since, owner=integrator_id)
    return await _page(conn, _released_query(shape), {**params, "kinds": list(kinds)})


async def preference_decisions(
    conn: AsyncConnection,
    *,
    after: int | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Sequence[Any]]:
    """The decisions that say one output is better than another, by decision id:
    every edit of an item that ended approved, and every settled comparison whose
    choice is ``a`` or ``b``. Rows: ``(decision_id, kind, prompt, choice,
    content_before, content_after, comparison)``; ``comparison`` is the item's content
    for comparisons only (other kinds leave it out: the large column is not read).
    ``since`` keeps decisions made at or after it."""
    shape = _shape(after=after, route=route, since=since, owner=integrator_id)
    params = _params(after=after, limit=limit, route=route, since=since, owner=integrator_id)
    return await _page(conn, _preference_query(shape), params)


async def labelled_items(
    conn: AsyncConnection,
    *,
    after: str | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Sequence[Any]]:
    """Items of kind ``label`` a person approved or edited, by id, with who settled
    them: ``(id, route, final_content JSON text, decided_at, actor_name)``."""
    shape = _shape(after=after, route=route, since=since, owner=integrator_id)
    params = _params(after=after, limit=limit, route=route, since=since, owner=integrator_id)
    return await _page(conn, _labelled_query(shape), params)


# -- the statements -----------------------------------------------------------------------
#
# An export reads hundreds of pages with the same statement: each shape (which filters
# are given) is built once, with bound parameters for the values, so a page costs an
# execution and not a new statement (building one was a tenth of a page's time).


class _Shape(NamedTuple):
    """Which of the optional conditions a page's statement has."""

    after: bool
    route: bool
    since: bool
    owner: bool


def _shape(*, after: Any, route: Any, since: Any, owner: Any) -> _Shape:
    return _Shape(after is not None, route is not None, since is not None, owner is not None)


def _params(
    *, after: Any, limit: int, route: str | None, since: datetime | None, owner: int | None
) -> dict[str, Any]:
    values = {"after": after, "limit": limit, "route": route, "since": since, "owner": owner}
    return {k: v for k, v in values.items() if v is not None}


@functools.cache
def _released_query(shape: _Shape) -> Select[*tuple[Any, ...]]:
    i = _items.c
    query = select(i.id, i.kind, _text(i.prompt), _text(i.final_content)).where(
        i.outcome.in_(HUMAN_APPROVALS),  # (so the state is approved; see _WALK)
        i.kind.in_(bindparam("kinds", expanding=True)),
        i.gold_expected.is_(None),
    )
    if shape.since:
        query = query.where(i.decided_at >= bindparam("since", type_=i.decided_at.type))
    query = query.where(*_scope(shape))
    if shape.after:
        query = query.where(i.id > bindparam("after", type_=i.id.type))
    return query.order_by(i.id).limit(bindparam("limit", type_=Integer))


@functools.cache
def _preference_query(shape: _Shape) -> Select[*tuple[Any, ...]]:
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
    if shape.since:
        query = query.where(d.at >= bindparam("since", type_=d.at.type))
    # The walk is over decisions; "+ 0" keeps SQLite from starting at the items of one
    # integrator instead (by ix_items_integrator_id_id) and sorting them for every page.
    query = query.where(*_scope(shape, indexed=False))
    if shape.after:
        query = query.where(d.id > bindparam("after", type_=d.id.type))
    return query.order_by(d.id).limit(bindparam("limit", type_=Integer))


@functools.cache
def _labelled_query(shape: _Shape) -> Select[*tuple[Any, ...]]:
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
    if shape.since:
        query = query.where(i.decided_at >= bindparam("since", type_=i.decided_at.type))
    query = query.where(*_scope(shape))
    if shape.after:
        query = query.where(i.id > bindparam("after", type_=i.id.type))
    return query.order_by(i.id).limit(bindparam("limit", type_=Integer))


def _text(column: ColumnElement[Any]) -> ColumnElement[str]:
    """A JSON column as its JSON text (SQL NULL stays None)."""
    return cast(column, Text)


def _scope(shape: _Shape, *, indexed: bool = True) -> list[ColumnElement[bool]]:
    where = []
    if shape.route:
        where.append(_items.c.route == bindparam("route", type_=_items.c.route.type))
    if shape.owner:
        owner = _items.c.integrator_id if indexed else _items.c.integrator_id + 0
        where.append(owner == bindparam("owner", type_=_items.c.integrator_id.type))
    return where


async def _page(
    conn: AsyncConnection, query: Select[Any], params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """One page, in a transaction of its own (on SQLite it ends here, so the lock its
    ``BEGIN IMMEDIATE`` took is not held while the page is encoded)."""
    try:
        rows: Sequence[Sequence[Any]] = (await conn.execute(query, params)).all()
    finally:
        await conn.rollback()
    return rows
