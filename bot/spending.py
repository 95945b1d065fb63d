"""What model calls cost: ledger rows, and each route's daily budget (UTC days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.clock import Clock
from bot.drafting import Usage
from bot.errors import BudgetExceeded
from bot.routes import Route
from storage import llm_calls as ledger
from storage.db import SessionFactory
from storage.models import LlmCall


def call_row(
    *,
    route: str,
    purpose: str,
    model: str,
    usage: Usage,
    at: datetime,
    ok: bool = True,
    item_id: str | None = None,
    task_id: str | None = None,
) -> LlmCall:
    """The ledger row of one model call (all its attempts)."""
    return LlmCall(
        route=route,
        item_id=item_id,
        task_id=task_id,
        purpose=purpose,
        model=model,
        ok=ok,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost=usage.cost,
        at=at,
    )


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: where a daily budget starts again."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Spending:
    """Checks a route's spending today against its ``llm.budget_per_day``."""

    def __init__(self, *, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def spent_today(self, route: Route) -> float:
        async with self._sessions() as session:
            return await ledger.spent_since(
                session, route=route.name, since=day_start(self._clock.now())
            )

    async def check(self, route: Route) -> None:
        """Raise BudgetExceeded when the route has spent its budget for today."""
        budget = route.llm.budget_per_day
        if budget is None:
            return
        spent = await self.spent_today(route)
        if spent >= budget:
            now = self._clock.now()
            renews = day_start(now) + timedelta(days=1)
            raise BudgetExceeded(
                f"route {route.name!r} has spent ${spent:.4f} of its ${budget:g} daily "
                f"model budget; drafting resumes at {renews:%Y-%m-%d} 00:00 UTC",
                retry_after=max(1, int((renews - now).total_seconds())),
            )
