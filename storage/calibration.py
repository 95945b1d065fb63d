"""What calibration counts: people's verdicts on a route's items per confidence bin.

Counting happens in the database (one ``GROUP BY`` over at most 101 bins and three
outcomes), so calibrating over millions of decisions needs no memory to speak of.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.bins import confidence_bin
from storage.models import Item

HUMAN_OUTCOMES = ("approved", "edited", "rejected")


async def outcome_counts(session: AsyncSession, *, route: str) -> list[tuple[int, str, int]]:
    """(confidence bin, outcome, count) over the route's items settled by people, with a
    confidence; gold items (known answers, planted by signoff) are left out."""
    inner = (
        select(
            confidence_bin(col(Item.confidence)).label("bin"),
            col(Item.outcome).label("outcome"),
        )
        .where(
            Item.route == route,
            col(Item.outcome).in_(HUMAN_OUTCOMES),
            col(Item.confidence).is_not(None),
            col(Item.gold_expected).is_(None),
        )
        .subquery()
    )
    query: Any = select(inner.c.bin, inner.c.outcome, func.count()).group_by(
        inner.c.bin, inner.c.outcome
    )
    return [(int(b), str(o), int(n)) for b, o, n in (await session.exec(query)).all()]
