"""Storage contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from storage import items as item_store
from storage import keys as key_store
from storage import outbox as outbox_store
from storage.db import SessionFactory, make_engine, session_factory
from storage.migrate import upgrade
from storage.models import Decision, Delivery, Item

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(db_url)
    await upgrade(engine)
    yield session_factory(engine)
    await engine.dispose()


async def seed(sessions: SessionFactory, n: int = 1) -> list[str]:
    ids = []
    async with sessions() as s, s.begin():
        key = await key_store.add_key(s, name="k", key_digest="d" * 64, signing_secret="x", now=NOW)
        assert key.id is not None
        for i in range(n):
            item = Item(
                id=f"itm_{i:04d}",
                integrator_id=key.id,
                route="r",
                kind="message",
                title="t",
                content={"text": "hi"},
                state="pending",
                release_state="none",
                created_at=NOW,
                updated_at=NOW,
            )
            await item_store.add_item(s, item=item)
            ids.append(item.id)
    return ids


async def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent

        def diff(conn: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_timestamps_come_back_in_utc(sessions: SessionFactory) -> None:
    [item_id] = await seed(sessions)
    async with sessions() as s:
        item = await item_store.get_item(s, item_id=item_id)
    assert item is not None and item.created_at == NOW and item.created_at.tzinfo is not None


async def test_conditional_update_wins_once(sessions: SessionFactory) -> None:
    [item_id] = await seed(sessions)
    async with sessions() as s, s.begin():
        first = await item_store.update_item_if_version(
            s, item_id=item_id, version=1, values={"state": "approved"}
        )
        second = await item_store.update_item_if_version(
            s, item_id=item_id, version=1, values={"state": "rejected"}
        )
    assert (first, second) == (True, False)
    async with sessions() as s:
        item = await item_store.get_item(s, item_id=item_id)
    assert item is not None and (item.state, item.version) == ("approved", 2)


async def test_idempotency_key_is_unique_per_integrator(sessions: SessionFactory) -> None:
    [item_id] = await seed(sessions)
    async with sessions() as s, s.begin():
        item = await item_store.get_item(s, item_id=item_id)
        assert item is not None
        item.idempotency_key = "k1"
    with pytest.raises(IntegrityError):
        async with sessions() as s, s.begin():
            await item_store.add_item(
                s,
                item=Item(
                    id="itm_dup",
                    integrator_id=item.integrator_id,
                    route="r",
                    kind="message",
                    title="t",
                    content={},
                    state="pending",
                    release_state="none",
                    idempotency_key="k1",
                    created_at=NOW,
                    updated_at=NOW,
                ),
            )


async def test_decisions_are_append_only(sessions: SessionFactory) -> None:
    [item_id] = await seed(sessions)
    async with sessions() as s, s.begin():
        await item_store.add_decision(
            s,
            decision=Decision(
                item_id=item_id,
                action="approve",
                surface="web",
                actor_id="a",
                actor_name="a",
                at=NOW,
            ),
        )
    for sql in ("UPDATE decisions SET actor_id = 'b'", "DELETE FROM decisions"):
        with pytest.raises(Exception, match="append-only"):
            async with sessions() as s, s.begin():
                await s.exec(text(sql))  # type: ignore[call-overload]
    async with sessions() as s:
        [d] = await item_store.decisions_for(s, item_ids=[item_id])
    assert d.actor_id == "a"


def delivery(item_id: str, key: str, due: datetime) -> Delivery:
    return Delivery(
        item_id=item_id,
        purpose="release",
        target_type="webhook",
        url="http://127.0.0.1/x",
        idempotency_key=key,
        payload={},
        state="queued",
        next_attempt_at=due,
        created_at=NOW,
    )


async def test_outbox_claims_due_rows_once_under_a_lease(sessions: SessionFactory) -> None:
    [item_id] = await seed(sessions)
    async with sessions() as s, s.begin():
        await outbox_store.enqueue(s, delivery=delivery(item_id, "a", NOW))
        await outbox_store.enqueue(s, delivery=delivery(item_id, "b", NOW + timedelta(minutes=5)))
    lease = timedelta(seconds=60)
    async with sessions() as s, s.begin():
        claimed = await outbox_store.claim_due(s, now=NOW, lease=lease, limit=10)
    assert [c.idempotency_key for c in claimed] == ["a"] and claimed[0].attempts == 1
    async with sessions() as s, s.begin():
        assert await outbox_store.claim_due(s, now=NOW, lease=lease, limit=10) == []
    # a worker that died holding the lease: the row is claimed again once it lapses
    async with sessions() as s, s.begin():
        again = await outbox_store.claim_due(
            s, now=NOW + timedelta(seconds=61), lease=lease, limit=10
        )
    assert [c.idempotency_key for c in again] == ["a"] and again[0].attempts == 2
    async with sessions() as s:  # a's lease (to NOW+121s) ends before b is due (NOW+5min)
        assert await outbox_store.next_due_at(s) == NOW + timedelta(seconds=121)


async def test_listing_is_newest_first_with_a_cursor(sessions: SessionFactory) -> None:
    ids = await seed(sessions, n=5)
    async with sessions() as s:
        first = await item_store.list_items(s, integrator_id=None, limit=2)
        rest = await item_store.list_items(s, integrator_id=None, before_id=first[-1].id, limit=10)
    assert [i.id for i in first + rest] == sorted(ids, reverse=True)


async def test_group_writer_isolates_a_bad_caller(sessions: SessionFactory) -> None:
    import asyncio

    from storage.batch import GroupWriter

    [item_id] = await seed(sessions)
    writer = GroupWriter(sessions=sessions)

    def decision(for_item: str) -> Decision:
        return Decision(
            item_id=for_item, action="approve", surface="web", actor_id="a", actor_name="a", at=NOW
        )

    good, bad, also_good = await asyncio.gather(
        writer.insert([decision(item_id)]),
        writer.insert([decision("itm_missing")]),  # foreign key fails
        writer.insert([decision(item_id), decision(item_id)]),
        return_exceptions=True,
    )
    assert good is None and also_good is None and isinstance(bad, IntegrityError)
    async with sessions() as s:
        assert len(await item_store.decisions_for(s, item_ids=[item_id])) == 3
