"""The scheduler of the serving process: APScheduler's AsyncIOScheduler with one
interval job for the sweep and one cron job per route for its daily digest.

The sweep job is coalesced and runs one instance at a time: a sweep that overruns its
interval is not stacked up behind itself. Several replicas each run their own
scheduler; claims in the database keep their work apart.
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.daily import DailyDigest, route_zone
from bot.routes import RouteTable
from bot.sweep import Sweeper

SWEEP_JOB = "sweep"


def build_scheduler(
    *,
    sweeper: Sweeper,
    daily: DailyDigest,
    routes: RouteTable,
    interval_seconds: float,
    sweep: bool = True,
) -> AsyncIOScheduler:
    """A scheduler with the sweep (when ``sweep``) and the daily digests; not started."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    if sweep:
        scheduler.add_job(
            _sweep,
            IntervalTrigger(seconds=interval_seconds, timezone="UTC"),
            args=[sweeper],
            id=SWEEP_JOB,
            name="escalation sweep",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
    for name in routes.names():
        route = routes.get(name)
        if route is None or route.digest.daily_at is None:
            continue
        at = route.digest.daily_at
        scheduler.add_job(
            daily.run,
            CronTrigger(hour=at.hour, minute=at.minute, timezone=route_zone(route)),
            kwargs={"route_name": name},
            id=f"daily-digest:{name}",
            name=f"daily digest of {name}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
    return scheduler


async def _sweep(sweeper: Sweeper) -> None:
    await sweeper.run_once()
