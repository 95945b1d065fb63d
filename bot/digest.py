"""The numbers behind chat slash commands: what waits for a reviewer, and today's tally
for the routes that post to a channel. Surfaces word and format them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from bot.reader import InboxReader
from bot.routes import RouteTable
from bot.schemas import ItemPublic


@dataclass(frozen=True, slots=True)
class Tally:
    routes: tuple[str, ...]
    waiting: int
    settled: dict[str, int]  # outcome -> items settled today (UTC)


class Digest:
    def __init__(self, *, inbox: InboxReader, routes: RouteTable, clock: Clock) -> None:
        self._inbox = inbox
        self._routes = routes
        self._clock = clock

    async def queue(self, *, routes: Sequence[str], limit: int = 20) -> list[ItemPublic]:
        """Pending items of ``routes``, oldest due first."""
        return await self._inbox.items(routes=routes, limit=limit)

    def routes_posting_to(self, *, surface: str, channel: str) -> list[str]:
        names = []
        for name in self._routes.names():
            route = self._routes.get(name)
            if route and any(s.type == surface and s.channel == channel for s in route.surfaces):
                names.append(name)
        return names

    async def today(self, *, routes: Sequence[str]) -> Tally:
        now = self._clock.now()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        waiting = await self._inbox.pending_counts(routes=routes)
        settled = await self._inbox.outcomes_between(
            routes=routes, since=midnight, until=now + timedelta(seconds=1)
        )
        return Tally(routes=tuple(routes), waiting=sum(waiting.values()), settled=settled)


def tally_words(tally: Tally) -> str:
    """``3 waiting; 2 approved, 1 rejected`` (plain words, no markup)."""
    done = ", ".join(f"{n} {o.replace('_', '-')}" for o, n in sorted(tally.settled.items()))
    return f"{tally.waiting} waiting; {done or 'nothing settled yet'}"
