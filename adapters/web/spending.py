"""The dashboard's model spending: calls, tokens and US dollars per route, today and over
the dashboard's window, beside each route's daily budget (from the call ledger)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.routes import RouteTable
from bot.spending import day_start
from storage import llm_calls as ledger
from storage.db import SessionFactory


@dataclass(frozen=True, slots=True)
class RouteSpending:
    route: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float  # over the window
    today: float  # since 00:00 UTC
    budget: float | None  # per UTC day

    @property
    def budget_text(self) -> str:
        if self.budget is None:
            return "none"
        return f"${self.today:.4f} of ${self.budget:g} ({self.today / self.budget:.0%})"


async def model_spending(
    sessions: SessionFactory,
    *,
    routes: RouteTable,
    names: Sequence[str] | None,
    now: datetime,
    days: int = 14,
) -> list[RouteSpending]:
    """Spending per route a reviewer may see (``names``; None: every route)."""
    start = day_start(now)
    async with sessions() as session:
        window = await ledger.spending_by_route(
            session, since=start - timedelta(days=days - 1), routes=names
        )
        today = {
            r[0]: r[4] for r in await ledger.spending_by_route(session, since=start, routes=names)
        }
    rows = []
    for route, calls, tokens_in, tokens_out, cost in window:
        config = routes.get(route)
        rows.append(
            RouteSpending(
                route=route,
                calls=calls,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost=cost,
                today=today.get(route, 0.0),
                budget=config.llm.budget_per_day if config is not None else None,
            )
        )
    return rows
