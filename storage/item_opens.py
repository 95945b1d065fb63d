"""When a reviewer first opened an item (``item_opens``): the start of their reading time.

Only the first open counts: a reload or a live refresh of the page does not restart
the clock. The unique key on (item, reviewer) keeps one row whatever races.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import SessionFactory
from storage.models import ItemOpen


async def record_open(
    sessions: SessionFactory, *, item_id: str, reviewer: str, now: datetime
) -> datetime:
    """Note that ``reviewer`` (``"surface:user id"``) has ``item_id`` in front of them;
    the time of their first open, which is ``now`` unless they opened it before."""
    first = await opened_at(sessions, item_id=item_id, reviewer=reviewer)
    if first is not None:
        return first
    try:
        async with sessions() as session, session.begin():
            session.add(ItemOpen(item_id=item_id, reviewer=reviewer, opened_at=now))
    except IntegrityError:  # opened in another tab at the same moment: that one counts
        first = await opened_at(sessions, item_id=item_id, reviewer=reviewer)
        if first is not None:
            return first
        raise
    return now


async def opened_at(sessions: SessionFactory, *, item_id: str, reviewer: str) -> datetime | None:
    """When ``reviewer`` first opened ``item_id``, or None if they never did."""
    async with sessions() as session:
        query = select(ItemOpen.opened_at).where(
            ItemOpen.item_id == item_id, ItemOpen.reviewer == reviewer
        )
        return (await session.exec(query)).first()
