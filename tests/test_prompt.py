"""The optional ``prompt`` of an item: validated on submit, stored, answered back, and part
of what an idempotent replay must match."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.app import System, create_app
from storage.models import Item

ITEM = {"route": "selfok", "kind": "message", "title": "Note", "content": {"text": "Hi"}}
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hi."},
    {"role": "assistant", "content": "Hi."},
    {"role": "user", "content": "Again."},
]


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # JSON storage of both databases: tests/test_export.py
    return sqlite_url


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    key = (await system.keys.create(name="agent")).api_key
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://signoff", headers={"Authorization": f"Bearer {key}"}
    ) as c:
        yield c


@pytest.mark.parametrize("prompt", ["Write a short greeting.", CHAT])
async def test_a_prompt_is_stored_and_answered_back(
    system: System, client: httpx.AsyncClient, prompt: Any
) -> None:
    created = await client.post("/v1/items", json={**ITEM, "prompt": prompt})
    assert created.status_code == 201, created.text
    assert created.json()["prompt"] == prompt
    item_id = created.json()["id"]
    assert (await client.get(f"/v1/items/{item_id}")).json()["prompt"] == prompt
    async with system.sessions() as session:
        row = await session.get(Item, item_id)
    assert row is not None and row.prompt == prompt


async def test_no_prompt_is_null(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/items", json=ITEM)
    assert created.status_code == 201 and created.json()["prompt"] is None


@pytest.mark.parametrize(
    ("prompt", "detail"),
    [
        (42, "got a number"),
        ({"role": "user", "content": "x"}, "got an object"),
        ("", "got an empty one"),
        ([], "got an empty one"),
        ([{"role": "robot", "content": "x"}], "0.role: Input should be 'system', 'user' or"),
        ([{"role": "user"}], "0.content: Field required"),
        ([{"role": "user", "content": "x", "name": "n"}], "0.name: Extra inputs are not"),
        (["just text"], "0: Input should be a valid dictionary"),
    ],
)
async def test_a_bad_prompt_is_422_naming_prompt(
    client: httpx.AsyncClient, prompt: Any, detail: str
) -> None:
    answer = await client.post("/v1/items", json={**ITEM, "prompt": prompt})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("prompt: Value error, must be a non-empty string, or a")
    assert detail in error["message"]


async def test_the_prompt_is_part_of_an_idempotent_replay(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k1"}
    first = await client.post("/v1/items", json={**ITEM, "prompt": CHAT}, headers=headers)
    again = await client.post("/v1/items", json={**ITEM, "prompt": CHAT}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post("/v1/items", json={**ITEM, "prompt": "other"}, headers=headers)
    assert other.status_code == 409


async def test_a_body_without_a_prompt_hashes_as_before_the_field_existed(
    system: System, client: httpx.AsyncClient
) -> None:
    """A key stored before ``prompt`` existed still matches its replay after an upgrade."""
    created = await client.post("/v1/items", json=ITEM, headers={"Idempotency-Key": "old"})
    old_body = {
        **ITEM,
        "confidence": None,
        "callback_url": None,
        "metadata": {},
        "requested_by": None,
        "due_at": None,
    }
    async with system.sessions() as session:
        row = await session.get(Item, created.json()["id"])
    assert row is not None
    canonical = json.dumps(old_body, sort_keys=True, separators=(",", ":"))
    assert row.request_hash == hashlib.sha256(canonical.encode()).hexdigest()
