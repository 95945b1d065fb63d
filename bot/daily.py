"""The daily digest: once a day per route, one message listing what waits for review.

Scheduled by a cron trigger in the route's timezone (``digest.daily_at``); every
replica schedules it, and the one that records the day's run first posts it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.clock import Clock
from bot.escalation import format_duration
from bot.expiry import expiry_note
from bot.ports import DigestEntry, Surface
from bot.routes import Route, RouteTable
from storage import items as item_store
from storage import steps as step_store
from storage.db import SessionFactory

log = logging.getLogger("signoff.digest")
_LISTED = 50  # a digest links the oldest 50; the heading gives the full count


def route_zone(route: Route) -> str:
    """The timezone a route's schedule is read in."""
    return route.working_hours.timezone if route.working_hours else "UTC"


class DailyDigest:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        clock: Clock,
        web_url: str,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._clock = clock
        self._web_url = web_url.rstrip("/")

    async def run(self, *, route_name: str, now: datetime | None = None) -> bool:
        """Post today's digest of ``route_name`` unless a replica already did (or nothing
        is pending); True if this call posted it."""
        route = self._routes.get(route_name)
        if route is None:
            return False
        now = now or self._clock.now()
        day = now.astimezone(route.working_hours.zone if route.working_hours else UTC).date()
        async with self._sessions() as session:
            counts = await item_store.pending_counts(session, routes=[route.name])
            pending = await step_store.oldest_pending(session, route=route.name, limit=_LISTED)
        if not pending:
            return False
        async with self._sessions() as session, session.begin():
            if not await step_store.claim_job(
                session, job=f"daily-digest:{route.name}", slot=day.isoformat(), now=now
            ):
                return False
        entries = []
        expiring = 0
        for item in pending:
            note = f"waiting {format_duration(now - item.created_at)}"
            expires = expiry_note(route=route, posted_at=item.created_at, now=now)
            soon = expires is not None and (
                _left(route, item.created_at, now) <= route.digest.expiring_within.total_seconds()
            )
            if soon:
                expiring += 1
                note += f" · {expires}"
            entries.append(
                DigestEntry(
                    item_id=item.id,
                    title=item.title,
                    url=f"{self._web_url}/items/{item.id}",
                    note=note,
                )
            )
        total = counts.get(route.name, len(pending))
        heading = f"Daily digest for {route.name}: {total} pending"
        if expiring:
            heading += (
                f", {expiring} expiring within {format_duration(route.digest.expiring_within)}"
            )
        heading += " (oldest first):"
        for target in route.surfaces:
            surface = self._surfaces.get(target.type)
            if surface is None or target.type == "web":
                continue
            try:
                await surface.announce(
                    channel=target.channel, mentions=[], heading=heading, entries=entries
                )
            except Exception:
                log.exception("route %s: daily digest on %s failed", route.name, target.type)
        return True


def _left(route: Route, posted_at: datetime, now: datetime) -> float:
    for step in route.escalation:
        if step.do == "expire":
            return (posted_at + step.after - now).total_seconds()
    return float("inf")
