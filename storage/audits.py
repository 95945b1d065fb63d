"""Audits of automatic decisions: the rows, the first-answer-wins update, and what
calibration and the drift alarm read back.

Answering is a conditional update (``WHERE verdict IS NULL``): of two racing answers
exactly one is recorded, the other finds the audit already answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.bins import confidence_bin
from storage.models import Audit, Item


class OpenAudit(NamedTuple):
    """An audit that waits for an answer, with what a list of them shows."""

    audit: Audit
    title: str
    kind: str


async def add_audit(session: AsyncSession, *, audit: Audit) -> Audit:
    """Insert ``audit``; its ``id`` is set on return."""
    session.add(audit)
    await session.flush()
    return audit


async def get_audit(session: AsyncSession, *, audit_id: int) -> Audit | None:
    query = select(Audit).where(Audit.id == audit_id)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def set_ref(session: AsyncSession, *, audit_id: int, ref: dict[str, Any]) -> None:
    """Remember where the audit card was posted (to update it once answered)."""
    await session.exec(update(Audit).where(col(Audit.id) == audit_id).values(ref=ref))


async def answer_if_open(
    session: AsyncSession,
    *,
    audit_id: int,
    verdict: str,
    corrected: dict[str, Any] | None,
    surface: str,
    actor_id: str,
    actor_name: str,
    at: datetime,
) -> bool:
    """Record the answer, only if the audit has none yet; False if it had one."""
    stmt = (
        update(Audit)
        .where(col(Audit.id) == audit_id, col(Audit.verdict).is_(None))
        .values(
            verdict=verdict,
            corrected=corrected,
            surface=surface,
            actor_id=actor_id,
            actor_name=actor_name,
            decided_at=at,
        )
    )
    result = await session.exec(stmt)
    return result.rowcount == 1


async def open_audits(
    session: AsyncSession, *, routes: Sequence[str], limit: int = 100
) -> list[OpenAudit]:
    """Unanswered audits of ``routes``, oldest first."""
    if not routes:
        return []
    query: Any = (
        select(Audit, Item.title, Item.kind)
        .join(Item, col(Item.id) == col(Audit.item_id))
        .where(col(Audit.route).in_(list(routes)), col(Audit.verdict).is_(None))
        .order_by(col(Audit.id))
        .limit(limit)
    )
    return [OpenAudit(a, t, k) for a, t, k in (await session.exec(query)).all()]


async def recent_verdicts(
    session: AsyncSession, *, route: str, auto_outcome: str, limit: int
) -> list[str]:
    """The verdicts of the route's last ``limit`` answered audits of ``auto_outcome``,
    newest first."""
    query: Any = (
        select(Audit.verdict)
        .where(
            Audit.route == route,
            Audit.auto_outcome == auto_outcome,
            col(Audit.verdict).is_not(None),
        )
        .order_by(col(Audit.decided_at).desc(), col(Audit.id).desc())
        .limit(limit)
    )
    return [str(v) for v in (await session.exec(query)).all()]


async def answered_count(session: AsyncSession, *, route: str, auto_outcome: str) -> int:
    """How many audits of ``auto_outcome`` on the route have been answered, ever."""
    query: Any = select(func.count()).where(
        Audit.route == route,
        Audit.auto_outcome == auto_outcome,
        col(Audit.verdict).is_not(None),
    )
    return int((await session.exec(query)).one())


async def verdict_counts(session: AsyncSession, *, route: str) -> list[tuple[int, str, str, int]]:
    """(confidence bin, auto outcome, verdict, count) over the route's answered audits;
    bins as :func:`storage.bins.confidence_bin`."""
    inner = (
        select(
            confidence_bin(col(Audit.confidence)).label("bin"),
            col(Audit.auto_outcome).label("auto_outcome"),
            col(Audit.verdict).label("verdict"),
        )
        .where(
            Audit.route == route,
            col(Audit.verdict).is_not(None),
            col(Audit.confidence).is_not(None),
        )
        .subquery()
    )
    query: Any = select(inner.c.bin, inner.c.auto_outcome, inner.c.verdict, func.count()).group_by(
        inner.c.bin, inner.c.auto_outcome, inner.c.verdict
    )
    return [(int(b), str(o), str(v), int(n)) for b, o, v, n in (await session.exec(query)).all()]
