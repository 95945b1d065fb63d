"""Web reviewers, their one-time sign-in links and their browser sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Reviewer, SignInLink, WebSession


async def add_reviewer(
    session: AsyncSession, *, name: str, routes: list[str], now: datetime
) -> Reviewer:
    reviewer = Reviewer(name=name, routes=routes, created_at=now)
    session.add(reviewer)
    await session.flush()
    return reviewer


async def reviewer_by_name(session: AsyncSession, *, name: str) -> Reviewer | None:
    return (await session.exec(select(Reviewer).where(Reviewer.name == name))).first()


async def set_reviewer_routes(
    session: AsyncSession, *, reviewer_id: int, routes: list[str]
) -> None:
    await session.exec(
        update(Reviewer).where(col(Reviewer.id) == reviewer_id).values(routes=routes)
    )


async def add_link(
    session: AsyncSession, *, reviewer_id: int, token_digest: str, expires_at: datetime
) -> SignInLink:
    link = SignInLink(reviewer_id=reviewer_id, token_digest=token_digest, expires_at=expires_at)
    session.add(link)
    await session.flush()
    return link


async def use_link(session: AsyncSession, *, token_digest: str, now: datetime) -> int | None:
    """Mark an unused, unexpired link used; return its reviewer id, or None.

    A conditional update, so a link works once even if two tabs race to use it.
    """
    link = (
        await session.exec(select(SignInLink).where(SignInLink.token_digest == token_digest))
    ).first()
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    result = await session.exec(
        update(SignInLink)
        .where(col(SignInLink.id) == link.id, col(SignInLink.used_at).is_(None))
        .values(used_at=now)
    )
    return link.reviewer_id if result.rowcount == 1 else None


async def add_session(
    session: AsyncSession,
    *,
    reviewer_id: int,
    token_digest: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> WebSession:
    row = WebSession(
        reviewer_id=reviewer_id,
        token_digest=token_digest,
        csrf_token=csrf_token,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return row


async def session_reviewer(
    session: AsyncSession, *, token_digest: str, now: datetime
) -> tuple[WebSession, Reviewer] | None:
    """The live session with this token digest and its reviewer, or None."""
    query: Any = (
        select(WebSession, Reviewer)
        .join(Reviewer, col(Reviewer.id) == col(WebSession.reviewer_id))
        .where(WebSession.token_digest == token_digest, col(WebSession.expires_at) > now)
    )
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])


async def end_session(session: AsyncSession, *, token_digest: str, now: datetime) -> None:
    await session.exec(
        update(WebSession)
        .where(col(WebSession.token_digest) == token_digest)
        .values(expires_at=now)
    )
