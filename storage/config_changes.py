"""Changes signoff made to a route's settings by itself; the latest per route and key
is in force. Rows are only ever added."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ConfigChange


async def add_change(session: AsyncSession, *, change: ConfigChange) -> ConfigChange:
    session.add(change)
    await session.flush()
    return change


async def latest(session: AsyncSession, *, route: str, key: str) -> ConfigChange | None:
    """The change in force for ``route`` and ``key``, or None."""
    query = (
        select(ConfigChange)
        .where(ConfigChange.route == route, ConfigChange.key == key)
        .order_by(col(ConfigChange.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def latest_per_route_key(session: AsyncSession, *, keys: Sequence[str]) -> list[ConfigChange]:
    """For every route, the change in force for each of ``keys`` that has one."""
    newest: Any = (
        select(func.max(ConfigChange.id))
        .where(col(ConfigChange.key).in_(list(keys)))
        .group_by(col(ConfigChange.route), col(ConfigChange.key))
    )
    query = select(ConfigChange).where(col(ConfigChange.id).in_(newest))
    return list((await session.exec(query)).all())


async def changes(
    session: AsyncSession, *, routes: Sequence[str] | None, limit: int = 50
) -> list[ConfigChange]:
    """The newest changes first (``routes`` None: every route)."""
    query = select(ConfigChange)
    if routes is not None:
        query = query.where(col(ConfigChange.route).in_(list(routes)))
    query = query.order_by(col(ConfigChange.id).desc()).limit(limit)
    return list((await session.exec(query)).all())
