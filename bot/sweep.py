"""The sweep: finds escalation steps that are due, claims each item-step, carries it out.

One sweep is :meth:`Sweeper.run_once`; the scheduler runs it on an interval and
``signoff sweep --once`` runs it from system cron. The clock is injected.

- Due steps come from an indexed query on ``(state, step_due_at)``, a page at a time,
  so memory does not grow with the number of pending items.
- Each item-step is claimed with a conditional update before anything is sent (see
  :mod:`storage.steps`), so sweeps in several processes never fire a step twice.
- When several steps of one item are due at once (after downtime), only the furthest
  fires; the ones before it are recorded as skipped, never sent late in a burst.
- Nudges that would land more than ``digest.threshold`` times in one channel in one
  sweep become a single digest message.
- A sweep that dies leaves claims whose lease runs out; the next sweep finishes them,
  skipping the posts already reminded and asking surfaces to check for a reminder
  that went out just before the crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.drift import DriftAlarm
from bot.escalation import PlannedStep, plan
from bot.expiry import Expirer
from bot.fanout import SurfaceFanout
from bot.notify import Notifier
from bot.ports import Surface
from bot.reminders import ClaimedStep, Reminders, SweepReport
from bot.routes import Route, RouteTable
from bot.views import item_public
from storage import claims as claim_store
from storage import items as item_store
from storage import steps as step_store
from storage.db import SessionFactory
from storage.models import Item, Post, StepRun

log = logging.getLogger("signoff.sweep")
_GIVE_UP_AFTER = 5  # attempts at a step whose surface keeps failing


class Sweeper:
    """Claims and carries out due escalation steps. Stateless between sweeps."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        fanout: SurfaceFanout,
        notifier: Notifier,
        expirer: Expirer,
        clock: Clock,
        web_url: str,
        lease_seconds: float = 120.0,
        batch: int = 200,
        on_queued: Callable[[], None] = lambda: None,
        drift: DriftAlarm | None = None,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._fanout = fanout
        self._notifier = notifier
        self._expirer = expirer
        self._clock = clock
        self._web_url = web_url.rstrip("/")
        self._lease = timedelta(seconds=lease_seconds)
        self._batch = batch
        self._on_queued = on_queued
        self._drift = drift  # the drift alarm of routes with `drift` settings
        # What a running sweep claimed and has not finished (handed back at shutdown).
        self._held_steps: dict[int, datetime] = {}
        self._held_posts: dict[str, datetime] = {}
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._reminders = Reminders(
            sessions=sessions,
            routes=routes,
            surfaces=surfaces,
            fanout=fanout,
            notifier=notifier,
            web_url=web_url,
        )

    async def run_once(self, *, now: datetime | None = None) -> SweepReport:
        """One sweep at ``now`` (default: the clock's time)."""
        self._running += 1
        self._idle.clear()
        try:
            return await self._sweep(now or self._clock.now())
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    async def idle(self) -> None:
        """Return when no sweep is running (at shutdown: the one under way ended)."""
        await self._idle.wait()

    async def hand_back(self) -> int:
        """Release the steps and postings a cancelled sweep claimed and did not finish,
        so the next sweep in any replica takes them now; how many were released."""
        steps, self._held_steps = self._held_steps, {}
        posts, self._held_posts = self._held_posts, {}
        if not steps and not posts:
            return 0
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            released = await claim_store.release_step_runs(session, claims=steps.items(), now=now)
            released += await claim_store.release_postings(session, claims=posts.items(), now=now)
        log.info("sweep: handed back %d claims", released)
        return released

    async def _sweep(self, now: datetime) -> SweepReport:
        report = SweepReport()
        while reposted := await self._repost(now):
            report.reposted += reposted
        while recovered := await self._recover(now):
            report.recovered += len(recovered)
            await self._carry_out(recovered, now, report)
        while (claimed := await self._claim_due(now, report)) is not None:
            await self._carry_out(claimed, now, report)
        if self._drift is not None:
            await self._drift.run(now=now)
        if report.fired or report.failed:
            log.info("sweep: %s", report)
        return report

    async def _carry_out(
        self, works: list[ClaimedStep], now: datetime, report: SweepReport
    ) -> None:
        await self._reminders.carry_out(works, now=now, report=report)
        for work in works:  # finished, or left to its lease to retry later (a failure)
            if work.run.id is not None:
                self._held_steps.pop(work.run.id, None)

    # -- claiming ----------------------------------------------------------------------

    async def _repost(self, now: datetime) -> int:
        """Post the cards that the submitting process failed (or died before) posting;
        how many items were looked at (0: none were due)."""
        async with self._sessions() as session, session.begin():
            due = await step_store.unposted(session, now=now, limit=self._batch)
            mine = [
                row
                for row in due
                if await step_store.claim_posting(session, item=row, until=now + self._lease)
            ]
        if not due:
            return 0
        self._held_posts.update((row.id, now + self._lease) for row in mine)
        if mine:
            async with self._sessions() as session:
                history = await item_store.decisions_for(session, item_ids=[r.id for r in mine])
            for row in mine:
                item = item_public(row, [d for d in history if d.item_id == row.id], self._routes)
                await self._fanout.post(item, missing_only=True)
                self._held_posts.pop(row.id, None)
        return len(due)

    async def _recover(self, now: datetime) -> list[ClaimedStep]:
        async with self._sessions() as session, session.begin():
            stale = await step_store.stale_claims(session, now=now, limit=self._batch)
            runs = [
                run
                for old in stale
                if (run := await step_store.reclaim(session, run=old, now=now, lease=self._lease))
            ]
        return await self._works(runs, now)

    async def _claim_due(self, now: datetime, report: SweepReport) -> list[ClaimedStep] | None:
        """Claim a page of due steps (expiring items on the way); None when none are due."""
        async with self._sessions() as session:
            due = await step_store.due_items(session, now=now, limit=self._batch)
        if not due:
            return None
        runs: list[StepRun] = []
        async with self._sessions() as session, session.begin():
            for item in due:
                route = self._routes.get(item.route)
                if route is None or item.next_step is None:
                    await step_store.unschedule(session, item_id=item.id, next_step=item.next_step)
                    continue
                chosen = self._furthest_due(item, route, now)
                if chosen is None:  # the route's chain changed under this item
                    await step_store.unschedule(session, item_id=item.id, next_step=item.next_step)
                    continue
                fire, skipped, following = chosen
                step = route.escalation[fire]
                report.skipped += len(skipped)
                if step.do == "expire" and step.expiry_effect != "keep":
                    continue  # expired below, each in its own transaction
                run = await step_store.claim(
                    session,
                    item=item,
                    step=fire,
                    action=step.do,
                    skipped=[(i, route.escalation[i].do) for i in skipped],
                    next_step=following.index if following else None,
                    next_due=following.due if following else None,
                    now=now,
                    lease=self._lease,
                )
                if run is not None:
                    runs.append(run)
        for item in due:
            await self._maybe_expire(item, now, report)
        return await self._works(runs, now)

    def _furthest_due(
        self, item: Item, route: Route, now: datetime
    ) -> tuple[int, list[int], PlannedStep | None] | None:
        chain = plan(
            route.escalation,
            posted_at=item.created_at,
            hours=route.working_hours,
            expire_in_working_hours=route.expire_in_working_hours,
        )
        positions = [p.index for p in chain]
        if item.next_step not in positions:
            return None
        start = positions.index(item.next_step)
        last = start
        while last + 1 < len(chain) and chain[last + 1].due <= now:
            last += 1
        following = chain[last + 1] if last + 1 < len(chain) else None
        return chain[last].index, [p.index for p in chain[start:last]], following

    async def _maybe_expire(self, item: Item, now: datetime, report: SweepReport) -> None:
        route = self._routes.get(item.route)
        if route is None or item.next_step is None:
            return
        chosen = self._furthest_due(item, route, now)
        if chosen is None:
            return
        fire, skipped, _ = chosen
        step = route.escalation[fire]
        if step.do != "expire" or step.expiry_effect == "keep":
            return
        expired = await self._expirer.expire(
            item_id=item.id,
            route=route,
            step=fire,
            skipped=skipped,
            next_step_expected=item.next_step,
            now=now,
        )
        if expired is None:
            return
        report.expired += 1
        self._notifier.changed(expired.id)
        self._on_queued()
        await self._fanout.refresh(expired)

    async def _works(self, runs: list[StepRun], now: datetime) -> list[ClaimedStep]:
        if not runs:
            return []
        self._held_steps.update(
            (run.id, run.claimed_until) for run in runs if run.id and run.claimed_until
        )
        ids = [run.item_id for run in runs]
        async with self._sessions() as session:
            rows = {row.id: row for row in await item_store.items_by_ids(session, item_ids=ids)}
            decisions = await item_store.decisions_for(session, item_ids=ids)
            posts = await item_store.posts_for_items(session, item_ids=ids)
        by_item: dict[str, list[Post]] = defaultdict(list)
        for post in posts:
            by_item[post.item_id].append(post)
        history = defaultdict(list)
        for decision in decisions:
            history[decision.item_id].append(decision)
        works = []
        for run in runs:
            row = rows.get(run.item_id)
            route = self._routes.get(run.route)
            if row is None or route is None or run.step >= len(route.escalation):
                await self._reminders.finish(run, now=now, detail="dropped: the route changed")
                if run.id is not None:
                    self._held_steps.pop(run.id, None)
                continue
            works.append(
                ClaimedStep(
                    run=run,
                    route=route,
                    step=route.escalation[run.step],
                    item=item_public(row, history[row.id], self._routes),
                    posts=by_item[row.id],
                    done=set(run.done_posts),
                    cards_pending=row.post_due_at is not None,
                )
            )
        return works
