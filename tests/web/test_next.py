"""The inbox's Next button over HTTP: reserve the most uncertain item and open it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bot.app import System, create_app
from bot.auth import Integrator
from bot.schemas import ItemCreate
from tests.web.test_pages import sign_in

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi"}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # the queue's storage tests run on both databases
    return sqlite_url


@pytest.fixture
async def app(system: System) -> FastAPI:
    return create_app(system, migrate=False, run_worker=False, run_scheduler=False)


@pytest.fixture
async def ann(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


@pytest.fixture
async def bob(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


async def submit(
    system: System, integrator: Integrator, confidence: float | None, route: str = "support"
) -> str:
    data = ItemCreate(
        route=route, kind="email", title=f"At {confidence}", content=EMAIL, confidence=confidence
    )
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def test_next_opens_the_most_uncertain_item_reserved_for_the_reviewer(
    system: System, integrator: Integrator, ann: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    far = await submit(system, integrator, 0.9)  # the support route's boundary is 0.595
    near = await submit(system, integrator, 0.6)
    await submit(system, integrator, None, route="strict")  # ann is no reviewer of it
    csrf = await sign_in(ann, system, "ann", ["support", "strict"])
    inbox = await ann.get("/")
    assert 'action="/next"' in inbox.text and ">Next</button>" in inbox.text

    refused = await ann.post("/next", data={})
    assert refused.status_code == 403 and "CSRF" in refused.text
    opened = await ann.post("/next", data={"csrf": csrf})
    assert opened.status_code == 303 and opened.headers["location"] == f"/items/{near}"
    again = await ann.post("/next", data={"csrf": csrf})
    assert again.headers["location"] == f"/items/{near}"  # still hers: the same one

    bob_csrf = await sign_in(bob, system, "bob", ["support"])
    other = await bob.post("/next", data={"csrf": bob_csrf})
    assert other.headers["location"] == f"/items/{far}"  # near is held for ann

    page = await ann.get(opened.headers["location"])
    assert page.status_code == 200 and "At 0.6" in page.text
    decided = await ann.post(f"/items/{near}/decide", data={"action": "approve", "csrf": csrf})
    assert decided.status_code == 303
    empty = await ann.post("/next", data={"csrf": csrf})
    assert empty.status_code == 200 and "Nothing is waiting for you." in empty.text
