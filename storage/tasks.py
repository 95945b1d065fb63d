"""Drafting tasks: stored, claimed under a lease, finished; and their failure callbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Task


async def get_task(
    session: AsyncSession, *, task_id: str, integrator_id: int | None = None
) -> Task | None:
    """The task, or None; with ``integrator_id``, only if that integrator owns it."""
    query = select(Task).where(Task.id == task_id)
    if integrator_id is not None:
        query = query.where(Task.integrator_id == integrator_id)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def task_by_idempotency_key(
    session: AsyncSession, *, integrator_id: int, key: str
) -> Task | None:
    query = select(Task).where(Task.integrator_id == integrator_id, Task.idempotency_key == key)
    return (await session.exec(query)).first()


async def claim_task(
    session: AsyncSession, *, task_id: str, now: datetime, lease_until: datetime
) -> bool:
    """Take a drafting task whose lease has run out (or that nobody holds): True if this
    caller now holds it. A conditional update, so of two replicas exactly one wins."""
    stmt = (
        update(Task)
        .where(
            col(Task.id) == task_id,
            col(Task.state) == "drafting",
            or_(col(Task.lease_until).is_(None), col(Task.lease_until) <= now),
        )
        .values(lease_until=lease_until, attempts=col(Task.attempts) + 1, updated_at=now)
    )
    return (await session.exec(stmt)).rowcount == 1


async def expired_tasks(session: AsyncSession, *, now: datetime, limit: int = 50) -> list[str]:
    """Ids of drafting tasks whose lease ran out (their process died), oldest first."""
    query = (
        select(Task.id)
        .where(Task.state == "drafting", col(Task.lease_until) <= now)
        .order_by(col(Task.lease_until))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def finish_task(session: AsyncSession, *, task_id: str, values: dict[str, Any]) -> bool:
    """Leave ``drafting`` (submitted or failed) with ``values``; False if it already left."""
    stmt = (
        update(Task)
        .where(col(Task.id) == task_id, col(Task.state) == "drafting")
        .values(**values, lease_until=None)
    )
    return (await session.exec(stmt)).rowcount == 1


async def due_callbacks(session: AsyncSession, *, now: datetime, limit: int = 50) -> list[Task]:
    """Failed tasks whose failure callback is due."""
    query = (
        select(Task)
        .where(Task.callback_state == "queued", col(Task.callback_due_at) <= now)
        .order_by(col(Task.callback_due_at))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def claim_callback(
    session: AsyncSession, *, task_id: str, now: datetime, lease_until: datetime
) -> bool:
    """Hold a due callback for one attempt (its due time moves to the lease's end)."""
    stmt = (
        update(Task)
        .where(
            col(Task.id) == task_id,
            col(Task.callback_state) == "queued",
            col(Task.callback_due_at) <= now,
        )
        .values(callback_due_at=lease_until, callback_attempts=col(Task.callback_attempts) + 1)
    )
    return (await session.exec(stmt)).rowcount == 1


async def set_callback(session: AsyncSession, *, task_id: str, values: dict[str, Any]) -> None:
    await session.exec(update(Task).where(col(Task.id) == task_id).values(**values))


async def release_task(session: AsyncSession, *, task_id: str, now: datetime) -> None:
    """End this process's lease on a drafting task (shutdown): another takes it at once."""
    await session.exec(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.state) == "drafting")
        .values(lease_until=now)
    )
