"""The integrator API over HTTP (in-process ASGI): contracts, idempotency, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.app import System, create_app
from bot.ports import Actor

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
ITEM = {
    "route": "support",
    "kind": "email",
    "title": "Refund",
    "content": EMAIL,
    "confidence": 0.5,
    "metadata": {"ticket": "T-1"},
}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # the API layer is database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
async def keys(system: System) -> dict[str, str]:
    return {name: (await system.keys.create(name=name)).api_key for name in ("alice", "bob")}


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as c:
        yield c


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


async def test_submit_and_read_back(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    created = await client.post("/v1/items", json=ITEM, headers=auth(keys["alice"]))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("itm_") and body["state"] == "pending"
    assert body["outcome"] is None and body["release_state"] == "none"
    assert body["metadata"] == {"ticket": "T-1"} and body["decisions"] == []
    got = await client.get(f"/v1/items/{body['id']}", headers=auth(keys["alice"]))
    assert got.status_code == 200 and got.json() == body


async def test_another_integrators_item_is_404(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    item = (await client.post("/v1/items", json=ITEM, headers=auth(keys["alice"]))).json()
    other = await client.get(f"/v1/items/{item['id']}", headers=auth(keys["bob"]))
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    listing = await client.get("/v1/items", headers=auth(keys["bob"]))
    assert listing.json()["items"] == []


async def test_idempotent_replay(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    headers = auth(keys["alice"], **{"Idempotency-Key": "abc"})
    first = await client.post("/v1/items", json=ITEM, headers=headers)
    again = await client.post("/v1/items", json=ITEM, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post("/v1/items", json={**ITEM, "title": "Other"}, headers=headers)
    assert other.status_code == 409
    assert "Idempotency-Key 'abc' was already used with a different body" in other.text
    # keys are per integrator: bob may use the same key for his own item
    bobs = await client.post(
        "/v1/items", json=ITEM, headers=auth(keys["bob"], **{"Idempotency-Key": "abc"})
    )
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]


async def test_hundred_concurrent_posts_with_one_key_make_one_item(
    client: httpx.AsyncClient, keys: dict[str, str], system: System
) -> None:
    headers = auth(keys["alice"], **{"Idempotency-Key": "burst"})
    answers = await asyncio.gather(
        *(client.post("/v1/items", json=ITEM, headers=headers) for _ in range(100))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 99 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    page = await system.reader.page(integrator_id=None)
    assert len(page.items) == 1


BAD: list[tuple[str, Any, dict[str, str], int, str]] = [
    (
        "missing field",
        {k: v for k, v in ITEM.items() if k != "title"},
        {},
        422,
        "title: Field required",
    ),
    (
        "wrong type",
        {**ITEM, "confidence": "high"},
        {},
        422,
        "confidence: Input should be a valid number",
    ),
    ("unknown kind", {**ITEM, "kind": "fax"}, {}, 422, "kind: unknown kind 'fax'"),
    ("unknown route", {**ITEM, "route": "nope"}, {}, 422, "route: unknown route 'nope'"),
    (
        "confidence above 1",
        {**ITEM, "confidence": 1.5},
        {},
        422,
        "confidence: Input should be less than or equal to 1",
    ),
    (
        "confidence below 0",
        {**ITEM, "confidence": -0.1},
        {},
        422,
        "confidence: Input should be greater than or equal to 0",
    ),
    (
        "bad content",
        {**ITEM, "content": {"to": ["x"], "subject": "s", "body": "b"}},
        {},
        422,
        "content.to.0",
    ),
    ("unknown field", {**ITEM, "colour": "red"}, {}, 422, "colour: Extra inputs are not permitted"),
    (
        "callback host not allowed",
        {**ITEM, "callback_url": "https://evil.example.com/x"},
        {},
        422,
        "callback_url: host of 'https://evil.example.com/x' is not in the callback_hosts"
        " of route 'support'",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "message"), BAD, ids=[b[0] for b in BAD]
)
async def test_bad_input_is_a_4xx_naming_the_problem(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    name: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    answer = await client.post("/v1/items", json=body, headers=auth(keys["alice"], **headers))
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]["message"]


async def test_not_json(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    answer = await client.post(
        "/v1/items",
        content=b'{"route": ',
        headers=auth(keys["alice"], **{"Content-Type": "application/json"}),
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("body is not valid JSON")
    form = await client.post(
        "/v1/items",
        content=b"route=x",
        headers=auth(keys["alice"], **{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert form.status_code == 400 and "application/json" in form.json()["error"]["message"]


async def test_body_over_one_mebibyte_is_413(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    big = {**ITEM, "content": {**EMAIL, "body": "x" * (1024 * 1024)}}
    answer = await client.post("/v1/items", json=big, headers=auth(keys["alice"]))
    assert answer.status_code == 413 and "over the limit of 1048576 bytes" in answer.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(20):
            yield b" " * 65536

    streamed = await client.post(
        "/v1/items",
        content=chunks(),
        headers=auth(keys["alice"], **{"Content-Type": "application/json"}),
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer sk_wrong"}, "unknown API key"),
        ({"Authorization": "Basic abc"}, "missing API key"),
    ],
)
async def test_no_or_wrong_key_is_401(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    answer = await client.post("/v1/items", json=ITEM, headers=headers)
    assert answer.status_code == 401 and message in answer.json()["error"]["message"]
    assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_cursor_pages(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    ids = []
    for n in range(5):
        created = await client.post(
            "/v1/items", json={**ITEM, "title": f"T{n}"}, headers=auth(keys["alice"])
        )
        ids.append(created.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/items", params=params, headers=auth(keys["alice"]))).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    bad = await client.get("/v1/items", params={"cursor": "garbage"}, headers=auth(keys["alice"]))
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]["message"]
    state = await client.get("/v1/items", params={"state": "done"}, headers=auth(keys["alice"]))
    assert state.status_code == 422 and "state: unknown state 'done'" in state.text


async def test_filters(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    await client.post("/v1/items", json=ITEM, headers=auth(keys["alice"]))
    await client.post("/v1/items", json={**ITEM, "confidence": 0.999}, headers=auth(keys["alice"]))
    pending = await client.get(
        "/v1/items", params={"state": "pending"}, headers=auth(keys["alice"])
    )
    assert [i["state"] for i in pending.json()["items"]] == ["pending"]
    by_route = await client.get("/v1/items", params={"route": "pair"}, headers=auth(keys["alice"]))
    assert by_route.json()["items"] == []


async def test_wait_returns_as_soon_as_the_item_is_decided(
    client: httpx.AsyncClient, keys: dict[str, str], system: System
) -> None:
    item = (await client.post("/v1/items", json=ITEM, headers=auth(keys["alice"]))).json()
    waiting = asyncio.create_task(
        client.get(f"/v1/items/{item['id']}", params={"wait": 30}, headers=auth(keys["alice"]))
    )
    await asyncio.sleep(0)  # let the request start waiting before the decision lands
    await system.service.decide(
        item_id=item["id"], action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
    )
    answer = await asyncio.wait_for(waiting, timeout=5)
    assert answer.json()["state"] == "approved"


async def test_wait_times_out_with_the_pending_item(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    item = (await client.post("/v1/items", json=ITEM, headers=auth(keys["alice"]))).json()
    answer = await client.get(
        f"/v1/items/{item['id']}", params={"wait": 0.05}, headers=auth(keys["alice"])
    )
    assert answer.status_code == 200 and answer.json()["state"] == "pending"
    bad = await client.get(
        f"/v1/items/{item['id']}", params={"wait": -1}, headers=auth(keys["alice"])
    )
    assert bad.status_code == 422 and "wait" in bad.text


async def test_health_readiness_and_schema(client: httpx.AsyncClient) -> None:
    # No lifespan ran here, so this app took no lead (tests/test_leader.py covers leading).
    assert (await client.get("/healthz")).json() == {"status": "ok", "leader": False}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/items", "/v1/items/{item_id}", "/healthz", "/readyz"} <= set(schema["paths"])
    body = schema["paths"]["/v1/items"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["title"] == "ItemCreate"
    assert "ItemPublic" in json.dumps(schema["components"])
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/items"]["post"]["security"] == [{"apiKey": []}]


async def test_naive_due_at_is_refused(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    answer = await client.post(
        "/v1/items", json={**ITEM, "due_at": "2026-12-01T10:00:00"}, headers=auth(keys["alice"])
    )
    assert answer.status_code == 422 and "due_at: Input should have timezone info" in answer.text
    ok = await client.post(
        "/v1/items",
        json={**ITEM, "due_at": "2026-12-01T10:00:00+01:00"},
        headers=auth(keys["alice"]),
    )
    assert ok.status_code == 201 and ok.json()["due_at"] == "2026-12-01T09:00:00Z"
