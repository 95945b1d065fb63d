"""``POST /v1/items:batch`` over HTTP (in-process ASGI), on SQLite and PostgreSQL: one
transaction for up to 1,000 items, idempotency per entry, errors naming the entry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import col, select

from bot.app import System, create_app
from bot.batch_intake import BatchEntry, BatchIntake
from bot.routes import RouteTable, parse_routes
from storage.models import Decision, Delivery, Item
from tests.conftest import ROUTES_YAML
from tests.fakes.surface import RecordingSurface

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
CALLBACK = "http://127.0.0.1:9/callback"
# for what no database changes (checks before any write, the HTTP layer)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def entry(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "route": "support",
        "kind": "email",
        "title": f"Refund {n}",
        "content": EMAIL,
        "confidence": 0.5,
        **extra,
    }


@pytest.fixture
def routes() -> RouteTable:
    """The shared routes; callbacks may go to the loopback receiver of these tests."""
    return parse_routes(ROUTES_YAML).allowing_private_callbacks()


@pytest.fixture
async def app(system: System) -> FastAPI:
    return create_app(system, migrate=False, run_worker=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as c:
        yield c
    await app.state.batch.drain()


@pytest.fixture
async def headers(system: System) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await system.keys.create(name='bulk')).api_key}"}


async def count(system: System, model: type[Any]) -> int:
    async with system.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_a_thousand_items_in_one_call(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    system: System,
    surface: RecordingSurface,
) -> None:
    surface.remembers = False  # like the web inbox: no post row per card
    entries = [entry(n) for n in range(1000)]
    answer = await client.post("/v1/items:batch", json={"items": entries}, headers=headers)
    assert answer.status_code == 201, answer.text[:500]
    results = answer.json()["items"]
    assert [r["index"] for r in results] == list(range(1000))
    assert all(r["created"] for r in results)
    assert [r["item"]["title"] for r in results] == [f"Refund {n}" for n in range(1000)]
    assert {r["item"]["state"] for r in results} == {"pending"}
    assert len({r["item"]["id"] for r in results}) == 1000
    assert await count(system, Item) == 1000  # committed when the call answered
    # each stored item reads back as the batch answered it
    one = results[617]["item"]
    got = await client.get(f"/v1/items/{one['id']}", headers=headers)
    assert got.json() == one


async def test_auto_decided_and_pending_entries(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    system: System,
    app: FastAPI,
    surface: RecordingSurface,
) -> None:
    entries = [
        entry(0, confidence=0.995, callback_url=CALLBACK),  # auto-approved: release + callback
        entry(1, confidence=0.5, callback_url=CALLBACK),  # pending: posted for review
        entry(2, confidence=0.1),  # auto-rejected: nothing to release, no callback URL
        entry(3, confidence=0.995),  # auto-approved: release only
    ]
    answer = await client.post("/v1/items:batch", json={"items": entries}, headers=headers)
    assert answer.status_code == 201, answer.text
    items = [r["item"] for r in answer.json()["items"]]
    assert [i["outcome"] for i in items] == [
        "auto_approved",
        None,
        "auto_rejected",
        "auto_approved",
    ]
    assert [i["state"] for i in items] == ["approved", "pending", "rejected", "approved"]
    assert [i["release_state"] for i in items] == ["queued", "none", "none", "queued"]
    assert [len(i["decisions"]) for i in items] == [1, 0, 1, 1]
    assert items[0]["decisions"][0]["surface"] == "policy"

    async with system.sessions() as session:
        deliveries = (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()
        decisions = (await session.exec(select(Decision))).all()
    by_item = {(d.item_id, d.purpose) for d in deliveries}
    assert by_item == {
        (items[0]["id"], "release"),
        (items[0]["id"], "callback"),
        (items[3]["id"], "release"),
    }
    assert {d.item_id for d in decisions} == {items[0]["id"], items[2]["id"], items[3]["id"]}

    await app.state.batch.drain()  # cards are posted after the answer
    assert [card.item_id for card, _ in surface.posts] == [items[1]["id"]]


async def test_idempotent_replay_per_entry(
    client: httpx.AsyncClient, headers: dict[str, str], system: System
) -> None:
    single = await client.post(
        "/v1/items", json=entry(9), headers={**headers, "Idempotency-Key": "k-single"}
    )
    assert single.status_code == 201
    first = await client.post(
        "/v1/items:batch",
        json={"items": [entry(0, idempotency_key="k0"), entry(1, idempotency_key="k1")]},
        headers=headers,
    )
    assert first.status_code == 201
    ids = [r["item"]["id"] for r in first.json()["items"]]

    again = await client.post(
        "/v1/items:batch",
        json={"items": [entry(0, idempotency_key="k0"), entry(1, idempotency_key="k1")]},
        headers=headers,
    )
    assert again.status_code == 200  # every entry a replay
    assert [(r["created"], r["item"]["id"]) for r in again.json()["items"]] == [
        (False, ids[0]),
        (False, ids[1]),
    ]

    mixed = await client.post(
        "/v1/items:batch",
        json={
            "items": [
                entry(2),  # no key: always new
                entry(1, idempotency_key="k1"),
                entry(9, idempotency_key="k-single"),  # the key a single submit used
                entry(3, idempotency_key="k3"),
                entry(3, idempotency_key="k3"),  # twice in one batch: one item
            ]
        },
        headers=headers,
    )
    assert mixed.status_code == 201
    results = mixed.json()["items"]
    assert [r["created"] for r in results] == [True, False, False, True, False]
    assert results[1]["item"]["id"] == ids[1]
    assert results[2]["item"]["id"] == single.json()["id"]
    assert results[3]["item"]["id"] == results[4]["item"]["id"]
    assert await count(system, Item) == 5  # single, k0, k1, no key, k3


async def test_key_reused_with_another_body_refuses_the_batch(
    client: httpx.AsyncClient, headers: dict[str, str], system: System
) -> None:
    stored = await client.post(
        "/v1/items:batch", json={"items": [entry(0, idempotency_key="k0")]}, headers=headers
    )
    assert stored.status_code == 201
    stored_id = stored.json()["items"][0]["item"]["id"]
    clash = await client.post(
        "/v1/items:batch",
        json={"items": [entry(5), entry(1, idempotency_key="k0")]},
        headers=headers,
    )
    assert clash.status_code == 409
    message = clash.json()["error"]["message"]
    assert message == (
        f"items.1.idempotency_key: 'k0' was already used with a different body (item {stored_id})"
    )
    twice = await client.post(
        "/v1/items:batch",
        json={"items": [entry(1, idempotency_key="dup"), entry(2, idempotency_key="dup")]},
        headers=headers,
    )
    assert twice.status_code == 409
    assert twice.json()["error"]["message"] == (
        "items.1.idempotency_key: 'dup' is also the key of items.0, with a different body"
    )
    assert await count(system, Item) == 1  # neither batch stored anything


@sqlite_only
async def test_invalid_entries_are_named_and_nothing_is_stored(
    client: httpx.AsyncClient, headers: dict[str, str], system: System
) -> None:
    entries = [entry(n) for n in range(20)]
    entries[3] = entry(3, route="nowhere")
    entries[17] = entry(17, content={**EMAIL, "to": ["not an address"]})
    entries[18] = entry(18, callback_url="https://evil.example/cb")
    answer = await client.post("/v1/items:batch", json={"items": entries}, headers=headers)
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    named = [
        message.index("items.3.route: unknown route 'nowhere'"),
        message.index("items.17.content.to.0: "),
        message.index("items.18.callback_url: host of 'https://evil.example/cb'"),
    ]
    assert named == sorted(named) and named[0] == 0  # each bad entry, in order
    assert message.count("items.") == 3

    schema = [entry(n) for n in range(10)]
    del schema[5]["title"]
    schema[7]["confidence"] = 3
    answer = await client.post("/v1/items:batch", json={"items": schema}, headers=headers)
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert "items.5.title: Field required" in message
    assert "items.7.confidence: Input should be less than or equal to 1" in message
    assert await count(system, Item) == 0


@sqlite_only
async def test_count_and_size_limits(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    system: System,
    surface: RecordingSurface,
) -> None:
    over = await client.post(
        "/v1/items:batch", json={"items": [entry(n) for n in range(1001)]}, headers=headers
    )
    assert over.status_code == 422
    assert over.json()["error"]["message"].startswith("items: List should have at most 1000")
    empty = await client.post("/v1/items:batch", json={"items": []}, headers=headers)
    assert empty.status_code == 422
    assert empty.json()["error"]["message"].startswith("items: List should have at least 1")

    surface.remembers = False  # like the web inbox: no post row per card
    # over SIGNOFF_MAX_BODY_BYTES (1 MiB) but within SIGNOFF_MAX_BATCH_BODY_BYTES (16 MiB)
    big = {**EMAIL, "body": "x" * 3000}
    large = json.dumps({"items": [entry(n, content=big) for n in range(400)]})
    assert 1024 * 1024 < len(large) < 16 * 1024 * 1024
    answer = await client.post(
        "/v1/items:batch",
        content=large,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201
    single = await client.post(
        "/v1/items",
        content=json.dumps(entry(0, content={**EMAIL, "body": "x" * (1024 * 1024)})),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert single.status_code == 413  # the larger limit is for the batch path only
    huge = await client.post(
        "/v1/items:batch",
        content=b" " * (16 * 1024 * 1024 + 1),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert "over the limit of 16777216 bytes" in huge.text
    assert await count(system, Item) == 400


@sqlite_only
async def test_auth_and_bad_body(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    nokey = await client.post("/v1/items:batch", json={"items": [entry(0)]})
    assert nokey.status_code == 401 and nokey.headers["WWW-Authenticate"] == "Bearer"
    bad = await client.post(
        "/v1/items:batch",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"


@sqlite_only
async def test_openapi_documents_the_batch(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/items:batch"]["post"]
    assert set(operation["responses"]) >= {"200", "201", "401", "409", "413", "422"}
    assert operation["security"] == [{"apiKey": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["items"]["maxItems"] == 1000


@sqlite_only
async def test_cards_wait_for_the_commit(system: System, surface: RecordingSurface) -> None:
    """Cards of a batch are posted after its transaction, not before: a batch refused
    for a conflict posts nothing."""
    intake = BatchIntake(service=system.service, sessions=system.sessions, routes=system.routes)
    key = await system.keys.create(name="bulk")
    integrator = await system.keys.authenticate(key.api_key)
    assert integrator is not None
    first = [BatchEntry.model_validate(entry(0, idempotency_key="a"))]
    await intake.submit(integrator=integrator, entries=first)
    await intake.drain()
    assert len(surface.posts) == 1
    clash = [
        BatchEntry.model_validate(entry(1)),
        BatchEntry.model_validate(entry(2, idempotency_key="a")),
    ]
    with pytest.raises(Exception, match="already used with a different body"):
        await intake.submit(integrator=integrator, entries=clash)
    await intake.drain()
    assert len(surface.posts) == 1
