"""The thresholds in force: the route file's, unless signoff changed one by itself.

The drift alarm may raise a route's ``auto_approve_at``; it records that as a
``ConfigChange`` row, and the latest row per route and key overrides the route file.
Submitting reads the thresholds for every item, so they are cached in memory: loaded
on first use, refreshed when ``ttl_seconds`` have passed (other replicas' changes
arrive within that time), on every sweep, and at once for a change made here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.routes import Route, Thresholds
from storage import config_changes as change_store
from storage.db import SessionFactory

APPROVE_AT = "thresholds.auto_approve_at"
REJECT_BELOW = "thresholds.auto_reject_below"
KEYS = (APPROVE_AT, REJECT_BELOW)


class ThresholdOverrides:
    """Effective thresholds per route, from the route file and recorded changes."""

    def __init__(
        self, *, sessions: SessionFactory, clock: Clock, ttl_seconds: float = 30.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._values: dict[str, dict[str, Any]] = {}
        self._loaded_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def thresholds(self, route: Route) -> Thresholds:
        """The route's thresholds in force now."""
        if self._stale():
            async with self._lock:
                if self._stale():  # one reload for many waiting submits
                    await self.refresh()
        return self.cached(route)

    def cached(self, route: Route) -> Thresholds:
        """The route's thresholds as last loaded (no database read)."""
        values = self._values.get(route.name)
        if not values:
            return route.thresholds
        return route.thresholds.model_copy(update=values)

    async def refresh(self) -> None:
        """Read the changes in force from the database."""
        async with self._sessions() as session:
            rows = await change_store.latest_per_route_key(session, keys=KEYS)
        values: dict[str, dict[str, Any]] = {}
        for row in rows:
            values.setdefault(row.route, {})[row.key.removeprefix("thresholds.")] = row.new_value
        self._values = values
        self._loaded_at = self._clock.now()

    def changed(self, *, route: str, key: str, value: Any) -> None:
        """A change this process has just recorded: in force here at once."""
        if key not in KEYS:
            raise ValueError(f"not a threshold key: {key!r}")
        self._values.setdefault(route, {})[key.removeprefix("thresholds.")] = value

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock.now() - self._loaded_at > self._ttl
