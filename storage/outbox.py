"""The delivery outbox: rows written in the deciding transaction, claimed by workers.

Claiming is a conditional update on a lease (``claimed_until``), so any number of
workers in any number of replicas deliver each row to one worker at a time; a worker
that dies mid-delivery loses its lease and the row is claimed again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Delivery

QUEUED = "queued"
DELIVERED = "delivered"
FAILED = "failed"


async def enqueue(session: AsyncSession, *, delivery: Delivery) -> Delivery:
    session.add(delivery)
    await session.flush()
    return delivery


def _due(now: datetime) -> Any:
    return (
        (col(Delivery.state) == QUEUED)
        & (col(Delivery.next_attempt_at) <= now)
        & or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now)
    )


async def claim_due(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int
) -> list[Delivery]:
    """Claim up to ``limit`` due rows for this worker and count the attempt."""
    candidates = (
        await session.exec(
            select(Delivery.id)
            .where(_due(now))
            .order_by(col(Delivery.next_attempt_at))
            .limit(limit)
        )
    ).all()
    claimed: list[Delivery] = []
    for delivery_id in candidates:
        stmt = (
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, _due(now))
            .values(claimed_until=now + lease, attempts=col(Delivery.attempts) + 1)
        )
        if (await session.exec(stmt)).rowcount == 1:
            row = await session.get(Delivery, delivery_id, populate_existing=True)
            if row is not None:
                claimed.append(row)
    return claimed


async def mark_delivered(
    session: AsyncSession, *, delivery_id: int, now: datetime, receipt: str
) -> None:
    await session.exec(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id)
        .values(state=DELIVERED, delivered_at=now, receipt=receipt, claimed_until=None)
    )


async def mark_retry(
    session: AsyncSession, *, delivery_id: int, next_attempt_at: datetime, error: str
) -> None:
    await session.exec(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id)
        .values(next_attempt_at=next_attempt_at, last_error=error, claimed_until=None)
    )


async def mark_failed(session: AsyncSession, *, delivery_id: int, error: str) -> None:
    await session.exec(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id)
        .values(state=FAILED, last_error=error, claimed_until=None)
    )


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest queued row may be claimed (its next attempt, or the end of its
    lease while another worker holds it), or None."""
    claimable = case(
        (
            col(Delivery.claimed_until) > col(Delivery.next_attempt_at),
            col(Delivery.claimed_until),
        ),
        else_=col(Delivery.next_attempt_at),
    )
    query = select(func.min(claimable)).where(Delivery.state == QUEUED)
    value = (await session.exec(query)).first()
    return value


async def deliveries_for(session: AsyncSession, *, item_id: str) -> list[Delivery]:
    query = select(Delivery).where(Delivery.item_id == item_id).order_by(col(Delivery.id))
    return list((await session.exec(query)).all())


async def requeue_failed(
    session: AsyncSession, *, item_id: str, purpose: str, now: datetime, more_attempts: int
) -> int:
    """Queue an item's failed rows of ``purpose`` again, same idempotency keys, with
    ``more_attempts`` further attempts; how many rows were queued."""
    stmt = (
        update(Delivery)
        .where(
            col(Delivery.item_id) == item_id,
            col(Delivery.purpose) == purpose,
            col(Delivery.state) == FAILED,
        )
        .values(
            state=QUEUED,
            next_attempt_at=now,
            claimed_until=None,
            max_attempts=col(Delivery.attempts) + more_attempts,
        )
    )
    return int((await session.exec(stmt)).rowcount)


async def list_rows(
    session: AsyncSession, *, purpose: str, state: str | None, limit: int
) -> list[Delivery]:
    """Outbox rows of ``purpose`` (and ``state``), newest first."""
    query = select(Delivery).where(Delivery.purpose == purpose)
    if state is not None:
        query = query.where(Delivery.state == state)
    return list((await session.exec(query.order_by(col(Delivery.id).desc()).limit(limit))).all())
