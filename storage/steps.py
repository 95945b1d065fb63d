"""Escalation step runs: finding due steps, claiming them, recording what they did.

Claiming a step is one transaction: a conditional update that moves the item's
``next_step`` on (only if it still points at this step and the item is pending) plus
the insert of a ``claimed`` run with a lease. Any number of sweeps in any number of
replicas therefore claim each item-step once. A sweep that dies before finishing leaves
a claimed run whose lease expires; the next sweep takes it over and skips the posts
already reminded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Item, JobRun, StepRun

CLAIMED = "claimed"
DONE = "done"


async def due_items(session: AsyncSession, *, now: datetime, limit: int) -> list[Item]:
    """Pending items whose next step is due, the most overdue first (index scan on
    ``(state, step_due_at)``)."""
    query = (
        select(Item)
        .where(Item.state == "pending", col(Item.step_due_at) <= now)
        .order_by(col(Item.step_due_at), col(Item.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def claim(
    session: AsyncSession,
    *,
    item: Item,
    step: int,
    action: str,
    skipped: Sequence[tuple[int, str]],
    next_step: int | None,
    next_due: datetime | None,
    now: datetime,
    lease: timedelta,
) -> StepRun | None:
    """Claim ``step`` of the item for this sweep, recording ``skipped`` (index, action)
    steps that were due too and are passed over; None if another sweep (or a decision)
    got there first. The caller commits."""
    assert item.next_step is not None and item.step_due_at is not None
    stmt = (
        update(Item)
        .where(
            col(Item.id) == item.id,
            col(Item.next_step) == item.next_step,
            col(Item.state) == "pending",
        )
        .values(next_step=next_step, step_due_at=next_due)
    )
    if (await session.exec(stmt)).rowcount != 1:
        return None
    run = StepRun(
        item_id=item.id,
        route=item.route,
        step=step,
        action=action,
        state=CLAIMED,
        due_at=item.step_due_at,
        claimed_until=now + lease,
        attempts=1,
        done_posts=[],
    )
    passed = [
        StepRun(
            item_id=item.id,
            route=item.route,
            step=index,
            action=what,
            state=DONE,
            due_at=item.step_due_at,
            attempts=0,
            done_posts=[],
            detail="skipped: a later step was due too",
            fired_at=now,
        )
        for index, what in skipped
    ]
    try:
        async with session.begin_nested():
            session.add_all([*passed, run])
            await session.flush()
    except IntegrityError:
        return None  # already run once (a route file edited under a running chain)
    return run


async def unschedule(session: AsyncSession, *, item_id: str, next_step: int | None) -> None:
    """Stop an item's chain (its route or step is gone from the route file)."""
    await session.exec(
        update(Item)
        .where(col(Item.id) == item_id, col(Item.next_step) == next_step)
        .values(next_step=None, step_due_at=None)
    )


async def unposted(session: AsyncSession, *, now: datetime, limit: int) -> list[Item]:
    """Pending items whose cards should be on a chat surface by now and may not be."""
    query = (
        select(Item)
        .where(Item.state == "pending", col(Item.post_due_at) <= now)
        .order_by(col(Item.post_due_at), col(Item.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def claim_posting(session: AsyncSession, *, item: Item, until: datetime) -> bool:
    """Take over posting ``item``'s cards until ``until`` (conditional, like a step)."""
    stmt = (
        update(Item)
        .where(
            col(Item.id) == item.id,
            col(Item.state) == "pending",
            col(Item.post_due_at) == item.post_due_at,
        )
        .values(post_due_at=until)
    )
    return bool((await session.exec(stmt)).rowcount == 1)


async def stale_claims(session: AsyncSession, *, now: datetime, limit: int) -> list[StepRun]:
    """Runs claimed by a sweep that did not finish before its lease ran out."""
    query = (
        select(StepRun)
        .where(StepRun.state == CLAIMED, col(StepRun.claimed_until) < now)
        .order_by(col(StepRun.claimed_until))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def reclaim(
    session: AsyncSession, *, run: StepRun, now: datetime, lease: timedelta
) -> StepRun | None:
    """Take over a stale run (conditional on its lease); None if another sweep did."""
    stmt = (
        update(StepRun)
        .where(
            col(StepRun.id) == run.id,
            col(StepRun.state) == CLAIMED,
            col(StepRun.claimed_until) == run.claimed_until,
        )
        .values(claimed_until=now + lease, attempts=col(StepRun.attempts) + 1)
    )
    if (await session.exec(stmt)).rowcount != 1:
        return None
    return await session.get(StepRun, run.id, populate_existing=True)


async def post_done(session: AsyncSession, *, run_id: int, post_ids: Sequence[int]) -> None:
    """Remember which posts were reminded, so a retried run skips them."""
    await session.exec(
        update(StepRun).where(col(StepRun.id) == run_id).values(done_posts=list(post_ids))
    )


async def finish(
    session: AsyncSession, *, run: StepRun, now: datetime, detail: str, post_ids: Sequence[int]
) -> None:
    """Mark the run done, and touch the item so open pages show it in the history."""
    await session.exec(
        update(StepRun)
        .where(col(StepRun.id) == run.id)
        .values(
            state=DONE,
            fired_at=now,
            claimed_until=None,
            detail=detail[:2000],
            done_posts=list(post_ids),
        )
    )
    await session.exec(update(Item).where(col(Item.id) == run.item_id).values(updated_at=now))


async def runs_for(session: AsyncSession, *, item_id: str) -> list[StepRun]:
    query = select(StepRun).where(StepRun.item_id == item_id).order_by(col(StepRun.id))
    return list((await session.exec(query)).all())


async def counts(session: AsyncSession) -> list[tuple[str, str, str, int]]:
    """(route, action, state, count) over all step runs, for metrics."""
    query: Any = select(StepRun.route, StepRun.action, StepRun.state, func.count()).group_by(
        StepRun.route, StepRun.action, StepRun.state
    )
    return [(r, a, s, int(n)) for r, a, s, n in (await session.exec(query)).all()]


async def claim_job(session: AsyncSession, *, job: str, slot: str, now: datetime) -> bool:
    """Insert the job's run for ``slot``; False if some replica already did."""
    try:
        async with session.begin_nested():
            session.add(JobRun(job=job, slot=slot, at=now))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def oldest_pending(session: AsyncSession, *, route: str, limit: int) -> list[Item]:
    """A route's pending items, oldest first."""
    query = (
        select(Item)
        .where(Item.state == "pending", Item.route == route)
        .order_by(col(Item.created_at), col(Item.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
