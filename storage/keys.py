"""Integrator API keys."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ApiKey


async def add_key(
    session: AsyncSession, *, name: str, key_digest: str, signing_secret: str, now: datetime
) -> ApiKey:
    key = ApiKey(name=name, key_digest=key_digest, signing_secret=signing_secret, created_at=now)
    session.add(key)
    await session.flush()
    return key


async def key_by_digest(session: AsyncSession, *, key_digest: str) -> ApiKey | None:
    result = await session.exec(select(ApiKey).where(ApiKey.key_digest == key_digest))
    return result.first()


async def key_by_name(session: AsyncSession, *, name: str) -> ApiKey | None:
    result = await session.exec(select(ApiKey).where(ApiKey.name == name))
    return result.first()


async def key_by_id(session: AsyncSession, *, key_id: int) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.exec(select(ApiKey).order_by(ApiKey.name))).all())
