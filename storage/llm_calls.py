"""The ledger of model calls: per-route spending (daily budgets, the dashboard)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import LlmCall


async def spent_since(session: AsyncSession, *, route: str, since: datetime) -> float:
    """US dollars the route's model calls cost since ``since``."""
    query = select(func.coalesce(func.sum(LlmCall.cost), 0.0)).where(
        LlmCall.route == route, col(LlmCall.at) >= since
    )
    return float((await session.exec(query)).one())


async def spending_by_route(
    session: AsyncSession, *, since: datetime, routes: Sequence[str] | None = None
) -> list[tuple[str, int, int, int, float]]:
    """(route, calls, input tokens, output tokens, US dollars) since ``since``."""
    query = (
        sa_select(
            col(LlmCall.route),
            func.count(),
            func.coalesce(func.sum(LlmCall.input_tokens), 0),
            func.coalesce(func.sum(LlmCall.output_tokens), 0),
            func.coalesce(func.sum(LlmCall.cost), 0.0),
        )
        .where(col(LlmCall.at) >= since)
        .group_by(LlmCall.route)
        .order_by(LlmCall.route)
    )
    if routes is not None:
        query = query.where(col(LlmCall.route).in_(list(routes)))
    return [
        (str(r), int(n), int(i), int(o), float(c))
        for r, n, i, o, c in (await session.execute(query)).all()
    ]
