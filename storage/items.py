"""Items and their decisions and posts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Decision, DeliveryAttempt, Item, Post


async def add_item(session: AsyncSession, *, item: Item) -> Item:
    session.add(item)
    await session.flush()
    return item


async def get_item(
    session: AsyncSession, *, item_id: str, integrator_id: int | None = None
) -> Item | None:
    """The item, or None; with ``integrator_id``, only if that integrator owns it."""
    query = select(Item).where(Item.id == item_id)
    if integrator_id is not None:
        query = query.where(Item.integrator_id == integrator_id)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def item_by_idempotency_key(
    session: AsyncSession, *, integrator_id: int, key: str
) -> Item | None:
    query = select(Item).where(Item.integrator_id == integrator_id, Item.idempotency_key == key)
    return (await session.exec(query)).first()


async def list_items(
    session: AsyncSession,
    *,
    integrator_id: int | None,
    state: str | None = None,
    route: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[Item]:
    """Items newest first (ids sort by creation time), at most ``limit``."""
    query = select(Item)
    if integrator_id is not None:
        query = query.where(Item.integrator_id == integrator_id)
    if state is not None:
        query = query.where(Item.state == state)
    if route is not None:
        query = query.where(Item.route == route)
    if before_id is not None:
        query = query.where(col(Item.id) < before_id)
    query = query.order_by(col(Item.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def update_item_if_version(
    session: AsyncSession, *, item_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` and bump the version, only if the item is still at ``version``."""
    stmt = (
        update(Item)
        .where(col(Item.id) == item_id, col(Item.version) == version)
        .values(**values, version=version + 1)
    )
    result = await session.exec(stmt)
    return result.rowcount == 1


async def add_decision(session: AsyncSession, *, decision: Decision) -> Decision:
    session.add(decision)
    await session.flush()
    return decision


async def decisions_for(session: AsyncSession, *, item_ids: Sequence[str]) -> list[Decision]:
    """All decisions of these items, oldest first."""
    if not item_ids:
        return []
    query = (
        select(Decision).where(col(Decision.item_id).in_(list(item_ids))).order_by(col(Decision.id))
    )
    return list((await session.exec(query)).all())


async def add_post(session: AsyncSession, *, post: Post) -> Post:
    session.add(post)
    await session.flush()
    return post


async def items_by_ids(session: AsyncSession, *, item_ids: Sequence[str]) -> list[Item]:
    if not item_ids:
        return []
    query = select(Item).where(col(Item.id).in_(list(item_ids)))
    return list((await session.exec(query.execution_options(populate_existing=True))).all())


async def posts_for_items(session: AsyncSession, *, item_ids: Sequence[str]) -> list[Post]:
    """The posts of several items, oldest first."""
    if not item_ids:
        return []
    query = select(Post).where(col(Post.item_id).in_(list(item_ids))).order_by(col(Post.id))
    return list((await session.exec(query)).all())


async def set_post_due(session: AsyncSession, *, item_id: str, at: datetime | None) -> None:
    """When a sweep should (re)post the item's missing cards; None: all are posted."""
    await session.exec(update(Item).where(col(Item.id) == item_id).values(post_due_at=at))


async def posts_for(session: AsyncSession, *, item_id: str) -> list[Post]:
    query = select(Post).where(Post.item_id == item_id).order_by(col(Post.id))
    return list((await session.exec(query)).all())


async def inbox(
    session: AsyncSession,
    *,
    routes: Sequence[str] | None,
    state: str | None = "pending",
    route: str | None = None,
    kind: str | None = None,
    limit: int = 200,
) -> list[Item]:
    """Items for a reviewer: oldest due first (items without a due time after those with
    one, oldest first). ``routes`` None means every route."""
    query = select(Item)
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    if state is not None:
        query = query.where(Item.state == state)
    if route is not None:
        query = query.where(Item.route == route)
    if kind is not None:
        query = query.where(Item.kind == kind)
    query = query.order_by(
        col(Item.due_at).is_(None), col(Item.due_at), col(Item.created_at), col(Item.id)
    ).limit(limit)
    return list((await session.exec(query)).all())


async def pending_counts(session: AsyncSession, *, routes: Sequence[str] | None) -> dict[str, int]:
    """How many items wait for review, per route."""
    query: Any = select(Item.route, func.count()).where(Item.state == "pending")
    if routes is not None:
        query = query.where(col(Item.route).in_(list(routes)))
    rows = (await session.exec(query.group_by(Item.route))).all()
    return {route: int(count) for route, count in rows}


async def add_attempt(session: AsyncSession, *, attempt: DeliveryAttempt) -> None:
    session.add(attempt)
    await session.flush()


async def attempts_for(session: AsyncSession, *, item_id: str) -> list[DeliveryAttempt]:
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.item_id == item_id)
        .order_by(col(DeliveryAttempt.id))
    )
    return list((await session.exec(query)).all())


async def changed_since(
    session: AsyncSession, *, since: datetime, limit: int = 500
) -> list[tuple[str, datetime]]:
    """Ids and change times of items changed after ``since``, oldest change first."""
    query: Any = (
        select(Item.id, Item.updated_at)
        .where(col(Item.updated_at) > since)
        .order_by(col(Item.updated_at))
        .limit(limit)
    )
    return [(item_id, at) for item_id, at in (await session.exec(query)).all()]


async def last_change(session: AsyncSession) -> datetime | None:
    """When any item last changed."""
    query: Any = select(func.max(Item.updated_at))
    value: datetime | None = (await session.exec(query)).first()
    return value


async def stale_redrafts(session: AsyncSession, *, now: datetime, limit: int = 50) -> list[str]:
    """Pending items whose redraft lease ran out (the redrafting process died)."""
    query = (
        select(Item.id)
        .where(Item.state == "pending", col(Item.redraft_until) <= now)
        .order_by(col(Item.redraft_until))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def release_redraft(session: AsyncSession, *, item_id: str, now: datetime) -> None:
    """End this process's lease on a redraft (shutdown): another takes it at once."""
    await session.exec(
        update(Item)
        .where(col(Item.id) == item_id, col(Item.redraft_until).is_not(None))
        .values(redraft_until=now)
    )
