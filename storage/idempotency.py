"""Looking up items by the idempotency keys their integrator sent."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Item


async def items_by_idempotency_keys(
    session: AsyncSession, *, integrator_id: int, keys: Sequence[str]
) -> list[Item]:
    """The integrator's items stored under any of ``keys`` (one query; at most one item
    per key, by the unique constraint ``uq_items_idempotency``)."""
    if not keys:
        return []
    query = select(Item).where(
        Item.integrator_id == integrator_id, col(Item.idempotency_key).in_(list(keys))
    )
    return list((await session.exec(query)).all())
