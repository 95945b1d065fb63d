"""``storage.rows.new_row`` makes the rows the constructors make, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect

from storage import items as item_store
from storage import keys as key_store
from storage.batch import GroupWriter
from storage.db import SessionFactory, make_engine, session_factory
from storage.migrate import upgrade
from storage.models import Decision, Delivery, Item
from storage.rows import new_row

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def item_values(n: int, integrator_id: int = 1) -> dict[str, Any]:
    return {
        "id": f"itm_{n:04d}",
        "integrator_id": integrator_id,
        "route": "r",
        "kind": "email",
        "title": "t",
        "content": {"to": ["a@example.com"], "subject": "s", "body": "b"},
        "confidence": 0.5,
        "state": "pending",
        "release_state": "none",
        "created_at": NOW,
        "updated_at": NOW,
    }


DECISION = {
    "item_id": "itm_0001",
    "action": "auto_approve",
    "surface": "policy",
    "actor_id": "policy",
    "actor_name": "signoff policy",
    "at": NOW,
}
DELIVERY = {
    "item_id": "itm_0001",
    "purpose": "release",
    "target_type": "webhook",
    "url": "https://example.com/hook",
    "idempotency_key": "k1",
    "payload": {"a": [1, 2]},
    "state": "queued",
    "next_attempt_at": NOW,
}


def columns(row: Any) -> dict[str, Any]:
    return {a.key: getattr(row, a.key) for a in sa_inspect(type(row)).column_attrs}


@pytest.mark.parametrize(
    ("model", "values"),
    [(Item, item_values(1)), (Decision, DECISION), (Delivery, DELIVERY)],
)
def test_same_object_as_the_constructor(model: Any, values: dict[str, Any]) -> None:
    made, fast = model(**values), new_row(model, **values)
    assert type(fast) is model
    assert fast.model_dump() == made.model_dump()
    assert columns(fast) == columns(made)
    assert fast.model_fields_set == made.model_fields_set
    assert sa_inspect(fast).transient
    # defaults made per row, not shared between rows
    other = new_row(model, **values)
    for name, value in columns(fast).items():
        if isinstance(value, dict | list) and not value:
            assert getattr(other, name) is not value
    # later changes go through the instrumentation as usual
    fast.id = 7 if model is not Item else "itm_9999"
    assert sa_inspect(fast).attrs.id.history.added == [fast.id]


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(db_url)
    await upgrade(engine)
    yield session_factory(engine)
    await engine.dispose()


async def test_rows_store_and_read_back_alike(sessions: SessionFactory) -> None:
    async with sessions() as s, s.begin():
        key = await key_store.add_key(s, name="k", key_digest="d" * 64, signing_secret="x", now=NOW)
    assert key.id is not None
    by_session = new_row(Item, **item_values(1, key.id))
    by_session.state = "approved"  # changed after construction, as settling does
    async with sessions() as s, s.begin():
        await item_store.add_item(s, item=by_session)  # the ORM unit of work
    await GroupWriter(sessions=sessions).insert(  # Core executemany, as ingest does
        [new_row(Item, **item_values(2, key.id)), new_row(Decision, **DECISION)]
    )
    async with sessions() as s:
        first = await item_store.get_item(s, item_id="itm_0001")
        second = await item_store.get_item(s, item_id="itm_0002")
        decisions = await item_store.decisions_for(s, item_ids=["itm_0001"])
    made = Item(**item_values(2, key.id))
    assert first is not None and first.state == "approved"
    assert second is not None and columns(second) == columns(made)
    assert [d.action for d in decisions] == ["auto_approve"]
