"""Handing claims back: a replica that stops before finishing what it claimed releases
those claims, so another replica takes them now instead of when their leases run out.

Every release is conditional on the lease this process set (and on the row still being
claimed), so a claim that expired and was taken over meanwhile is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Delivery, Item, StepRun
from storage.outbox import QUEUED
from storage.steps import CLAIMED


async def release_deliveries(
    session: AsyncSession, *, claims: Iterable[tuple[int, datetime]]
) -> list[int]:
    """Clear the leases of queued outbox rows claimed until the given times, not counting
    the unfinished attempt; the ids of the rows released."""
    released = []
    for delivery_id, until in claims:
        stmt = (
            update(Delivery)
            .where(
                col(Delivery.id) == delivery_id,
                col(Delivery.state) == QUEUED,
                col(Delivery.claimed_until) == until,
            )
            .values(claimed_until=None, attempts=col(Delivery.attempts) - 1)
        )
        if (await session.exec(stmt)).rowcount == 1:
            released.append(delivery_id)
    return released


async def release_step_runs(
    session: AsyncSession, *, claims: Iterable[tuple[int, datetime]], now: datetime
) -> int:
    """End the leases of escalation step runs still claimed until the given times, so the
    next sweep anywhere recovers them (an attempt is counted again when it does); how
    many were released."""
    released = 0
    for run_id, until in claims:
        stmt = (
            update(StepRun)
            .where(
                col(StepRun.id) == run_id,
                col(StepRun.state) == CLAIMED,
                col(StepRun.claimed_until) == until,
            )
            .values(
                claimed_until=now - timedelta(seconds=1),  # stale_claims wants it < now
                attempts=col(StepRun.attempts) - 1,
            )
        )
        released += int((await session.exec(stmt)).rowcount)
    return released


async def release_postings(
    session: AsyncSession, *, claims: Iterable[tuple[str, datetime]], now: datetime
) -> int:
    """Make the card posting this process claimed for pending items due again now."""
    released = 0
    for item_id, until in claims:
        stmt = (
            update(Item)
            .where(
                col(Item.id) == item_id,
                col(Item.state) == "pending",
                col(Item.post_due_at) == until,
            )
            .values(post_due_at=now)
        )
        released += int((await session.exec(stmt)).rowcount)
    return released
