"""Webhook releases and decision callbacks against a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import System, build
from bot.auth import Integrator, NewKey
from bot.clock import FrozenClock
from bot.ports import Actor
from bot.release import RetryPolicy
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from bot.secrets import verify
from bot.settings import load_settings
from storage import outbox as outbox_store
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def routes(receiver: Receiver) -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "ship": {
                    "target": {"type": "webhook", "url": f"{receiver.url}/release"},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                }
            }
        }
    )


@pytest.fixture
async def key(system: System) -> NewKey:
    return await system.keys.create(name="agent")


async def approve_one(system: System, key: NewKey, **extra: str) -> str:
    integrator = await system.keys.authenticate(key.api_key)
    assert isinstance(integrator, Integrator)
    item = (
        await system.service.submit(
            integrator=integrator,
            data=ItemCreate(
                route="ship",
                kind="email",
                title="Refund",
                content=EMAIL,
                confidence=0.5,
                **extra,
            ),
        )
    ).item
    await system.service.decide(
        item_id=item.id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
    )
    return item.id


async def drain(system: System, clock: FrozenClock, *, passes: int) -> None:
    """Run the worker, moving the clock past each backoff, without sleeping."""
    for _ in range(passes):
        await system.worker.run_once()
        clock.advance(timedelta(hours=2))


async def test_fails_three_times_then_delivers_once_with_one_key(
    system: System, key: NewKey, receiver: Receiver, clock: FrozenClock
) -> None:
    receiver.script = [500, 503, 502]
    item_id = await approve_one(system, key)
    await drain(system, clock, passes=6)

    assert [r.status for r in receiver.received] == [500, 503, 502, 200]
    [accepted] = receiver.accepted()
    assert {r.headers["Idempotency-Key"] for r in receiver.received} == {f"{item_id}:release"}
    assert verify(
        secret=key.signing_secret,
        body=accepted.body,
        header=accepted.headers["Signoff-Signature"],
        now=int(time.time()),
    )
    assert not verify(
        secret="whsec_other",
        body=accepted.body,
        header=accepted.headers["Signoff-Signature"],
        now=int(time.time()),
    )
    payload = json.loads(accepted.body)
    assert payload["event"] == "item.released" and payload["item"]["id"] == item_id
    assert payload["item"]["final_content"]["subject"] == "Your refund"
    item = await system.reader.get(item_id=item_id)
    assert item.release_state == "released" and item.release_error is None


async def test_a_receiver_that_never_recovers_fails_the_release(
    system: System, key: NewKey, receiver: Receiver, clock: FrozenClock
) -> None:
    receiver.then = 503
    item_id = await approve_one(system, key)
    await drain(system, clock, passes=10)
    assert len(receiver.received) == 4  # SIGNOFF_RELEASE_MAX_ATTEMPTS=4 in the fixture
    item = await system.reader.get(item_id=item_id)
    assert item.release_state == "failed"
    assert item.release_error is not None and "HTTP 503" in item.release_error
    async with system.sessions() as session:
        [row] = await outbox_store.deliveries_for(session, item_id=item_id)
    assert row.state == "failed" and row.attempts == 4 and "HTTP 503" in (row.last_error or "")


async def test_a_refusal_is_not_retried(
    system: System, key: NewKey, receiver: Receiver, clock: FrozenClock
) -> None:
    receiver.then = 400
    item_id = await approve_one(system, key)
    await drain(system, clock, passes=3)
    assert len(receiver.received) == 1
    assert (await system.reader.get(item_id=item_id)).release_state == "failed"


async def test_backoff_waits_before_the_next_attempt(
    system: System, key: NewKey, receiver: Receiver, clock: FrozenClock
) -> None:
    receiver.script = [500]
    await approve_one(system, key)
    assert await system.worker.run_once() == 1
    assert await system.worker.run_once() == 0  # not due yet: the clock has not moved
    clock.advance(timedelta(seconds=1))
    assert await system.worker.run_once() == 0  # base 2 s with jitter: due in 1 to 2 s
    clock.advance(timedelta(seconds=1.01))
    assert await system.worker.run_once() == 1
    assert [r.status for r in receiver.received] == [500, 200]


def test_backoff_is_exponential_with_jitter() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=60)
    assert policy.delay(1, rand=lambda: 1.0) == timedelta(seconds=2)
    assert policy.delay(3, rand=lambda: 1.0) == timedelta(seconds=8)
    assert policy.delay(3, rand=lambda: 0.0) == timedelta(seconds=4)
    assert policy.delay(30, rand=lambda: 1.0) == timedelta(seconds=60)


async def test_callback_reports_the_decision(
    system: System, key: NewKey, receiver: Receiver, clock: FrozenClock
) -> None:
    item_id = await approve_one(system, key, callback_url=f"{receiver.url}/hook")
    await drain(system, clock, passes=2)
    by_path = {r.path: r for r in receiver.accepted()}
    callback = json.loads(by_path["/hook"].body)
    assert callback["event"] == "item.decided" and callback["item"]["outcome"] == "approved"
    assert by_path["/hook"].headers["Idempotency-Key"] == f"{item_id}:callback"
    assert set(by_path) == {"/hook", "/release"}


async def test_two_workers_never_deliver_one_row_twice(
    db_url: str,
    routes: RouteTable,
    clock: FrozenClock,
    key: NewKey,
    receiver: Receiver,
    system: System,
) -> None:
    for _ in range(10):
        await approve_one(system, key)
    other = build(
        load_settings({"SIGNOFF_DATABASE_URL": db_url}),
        clock=clock,
        routes=routes,
        surfaces={"web": RecordingSurface()},
    )
    try:
        await asyncio.gather(
            system.worker.run_once(),
            other.worker.run_once(),
            system.worker.run_once(),
            other.worker.run_once(),
        )
    finally:
        await other.close()
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert len(keys) == 10 and len(set(keys)) == 10
