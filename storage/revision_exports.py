"""The read behind the export's redraft pairs: approved items that had rejected revisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Text, cast, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Item


async def redrafted_items(
    session: AsyncSession,
    *,
    after: str | None = None,
    limit: int,
    route: str | None = None,
    since: datetime | None = None,
    integrator_id: int | None = None,
) -> Sequence[Row[Any]]:
    """Items a person approved (or edited) after one or more redrafts, by id:
    ``(id, kind, prompt JSON text, final_content, revisions)``. Gold items are left out."""
    query = (
        select(
            col(Item.id),
            col(Item.kind),
            cast(col(Item.prompt), Text),
            col(Item.final_content),
            col(Item.revisions),
        )
        .where(
            col(Item.revisions).is_not(None),
            cast(col(Item.revisions), Text) != "null",  # the ORM stores None as JSON null
            col(Item.outcome).in_(("approved", "edited")),
            col(Item.gold_expected).is_(None),
        )
        .order_by(col(Item.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(Item.id) > after)
    if route is not None:
        query = query.where(col(Item.route) == route)
    if since is not None:
        query = query.where(col(Item.decided_at) >= since)
    if integrator_id is not None:
        query = query.where(col(Item.integrator_id) == integrator_id)
    return (await session.execute(query)).all()
