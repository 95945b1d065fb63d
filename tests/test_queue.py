"""The uncertainty-first review queue, on SQLite and PostgreSQL, and its HTTP API."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.app import System, create_app
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.ports import Actor
from bot.queue import ReservedItem, ReviewQueue, boundary
from bot.routes import RouteTable, Thresholds, parse_routes
from bot.schemas import ItemCreate
from storage.db import make_engine, session_factory
from storage.models import ConfigChange

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
ROUTES = {
    "routes": {
        # boundary 0.6, the midpoint of the two thresholds
        "support": {
            "thresholds": {"auto_approve_at": 0.9, "auto_reject_below": 0.3},
            "reject_reasons": ["wrong"],
            "review": {"reserve_minutes": 5},
        },
        "ops": {"thresholds": {"auto_approve_at": 0.8}},  # boundary 0.8
        "plain": {},  # boundary 0.5
        "strict": {"reviewers": {"web": ["lead"]}},
        "pair": {"quorum": 2},
        "selfok": {"allow_self_approval": True},
        "capped": {"review": {"daily_cap": 2}},
    }
}


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(ROUTES)


def web(name: str) -> Actor:
    return Actor(surface="web", user_id=name, name=name)


async def submit(
    system: System,
    integrator: Integrator,
    confidence: float | None,
    *,
    route: str = "support",
    title: str = "Draft",
    **extra: Any,
) -> str:
    data = ItemCreate(
        route=route, kind="email", title=title, content=EMAIL, confidence=confidence, **extra
    )
    item = (await system.service.submit(integrator=integrator, data=data)).item
    assert item.state == "pending"
    # one second apart: "ties to the oldest" has an oldest to go to
    assert isinstance(system.clock, FrozenClock)
    system.clock.advance(1)
    return item.id


def test_the_boundary_of_a_route() -> None:
    assert boundary(Thresholds(auto_approve_at=0.9, auto_reject_below=0.3)) == pytest.approx(0.6)
    assert boundary(Thresholds(auto_approve_at=0.8)) == 0.8
    assert boundary(Thresholds(auto_reject_below=0.4)) == 0.4
    assert boundary(Thresholds()) == 0.5


async def test_next_serves_100_items_in_uncertainty_order(
    system: System, integrator: Integrator
) -> None:
    rng = random.Random(7)
    # Two-decimal confidences in the pending band [0.3, 0.9): many equal distances from
    # 0.6 (0.5 and 0.7, or two 0.55s), which must go to the older item; some without a
    # confidence, which are the most uncertain of all.
    confidences = [None if n % 17 == 0 else rng.randrange(30, 90) / 100 for n in range(100)]
    submitted = [await submit(system, integrator, c) for c in confidences]

    def key(n: int) -> tuple[int, float, int]:
        c = confidences[n]
        return (0, 0.0, n) if c is None else (1, round(abs(c - 0.6), 9), n)

    expected = [submitted[n] for n in sorted(range(100), key=key)]
    served = []
    for _ in range(100):
        item = await system.queue.next(reviewer=web("ann"))
        assert item is not None and item.state == "pending"
        served.append(item.id)
        await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert served == expected
    assert await system.queue.next(reviewer=web("ann")) is None


async def test_each_route_is_measured_from_its_own_boundary(
    system: System, integrator: Integrator
) -> None:
    far = await submit(system, integrator, 0.5, route="ops")  # 0.30 from 0.8
    near = await submit(system, integrator, 0.79, route="ops")  # 0.01 from 0.8
    middle = await submit(system, integrator, 0.62, route="support")  # 0.02 from 0.6
    plain = await submit(system, integrator, 0.45, route="plain")  # 0.05 from 0.5
    served = []
    while (item := await system.queue.next(reviewer=web("ann"))) is not None:
        served.append(item.id)
        await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert served == [near, middle, plain, far]


async def test_a_reviewer_asking_again_gets_the_same_item_until_it_expires(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    first = await submit(system, integrator, 0.6)
    second = await submit(system, integrator, 0.65)
    mine = await system.queue.next(reviewer=web("ann"))
    assert mine is not None and mine.id == first
    assert (mine.reserved_by, mine.reserved_until) == (
        "web:ann",
        clock.now() + timedelta(minutes=5),
    )
    clock.advance(60)
    again = await system.queue.next(reviewer=web("ann"))
    assert again is not None and (again.id, again.reserved_until) == (first, mine.reserved_until)
    other = await system.queue.next(reviewer=web("bob"))
    assert other is not None and other.id == second  # the first is held for ann

    clock.advance(timedelta(minutes=4, seconds=1))  # ann's five minutes are over
    back = await system.queue.next(reviewer=web("cay"))
    assert back is not None and back.id == first and back.reserved_by == "web:cay"
    assert await system.queue.next(reviewer=web("dan")) is None  # both held again


async def test_a_reservation_steers_next_but_does_not_stop_deciding(
    system: System, integrator: Integrator
) -> None:
    held = await submit(system, integrator, 0.6)
    later = await submit(system, integrator, 0.7)
    assert (await system.queue.next(reviewer=web("ann"))).id == held  # type: ignore[union-attr]
    decided = await system.service.decide(item_id=held, action="approve", actor=web("bob"))
    assert decided.outcome == "approved"
    nxt = await system.queue.next(reviewer=web("ann"))
    assert nxt is not None and nxt.id == later


async def test_reviewers_calling_at_once_get_different_items(
    system: System, integrator: Integrator
) -> None:
    ids = [await submit(system, integrator, 0.5 + n / 100) for n in range(30)]
    got = await asyncio.gather(*(system.queue.next(reviewer=web(f"r{n}")) for n in range(20)))
    served = [item.id for item in got if item is not None]
    assert len(served) == 20 and len(set(served)) == 20
    assert set(served) == set(ids[:20])  # the twenty closest to 0.6 (0.50 … 0.69)


async def test_two_replicas_racing_never_reserve_one_item_twice(
    system: System, integrator: Integrator, db_url: str, routes: RouteTable, clock: FrozenClock
) -> None:
    """Separate engines, as two processes against one database: on PostgreSQL the
    transactions really overlap, and the conditional update decides who wins."""
    for _ in range(12):
        await submit(system, integrator, 0.6)  # all equally uncertain: every caller wants #1
    other = make_engine(db_url)
    try:
        replica = ReviewQueue(sessions=session_factory(other), routes=routes, clock=clock)
        queues = [system.queue, replica]
        for _ in range(3):  # several rounds of races on the same head of the queue
            got = await asyncio.gather(
                *(queues[n % 2].next(reviewer=web(f"r{n}")) for n in range(4))
            )
            assert all(item is not None for item in got)
            served = [item.id for item in got if item is not None]
            assert len(set(served)) == 4
            for item in got:
                assert item is not None
                await system.service.decide(item_id=item.id, action="approve", actor=web("x"))
    finally:
        await other.dispose()


async def test_items_of_routes_the_reviewer_may_not_decide_are_never_served(
    system: System, integrator: Integrator
) -> None:
    guarded = [await submit(system, integrator, None, route="strict") for _ in range(3)]
    open_item = await submit(system, integrator, 0.1, route="plain")  # far from 0.5
    item = await system.queue.next(reviewer=web("ann"))
    assert item is not None and item.id == open_item
    await system.service.decide(item_id=open_item, action="approve", actor=web("ann"))
    assert await system.queue.next(reviewer=web("ann")) is None  # the strict ones stay
    lead = await system.queue.next(reviewer=web("lead"))
    assert lead is not None and lead.id == guarded[0]
    # a narrower list (the web reviewer's own routes) narrows further
    assert await system.queue.next(reviewer=web("lead"), routes=["plain"]) is None
    assert await system.queue.next(reviewer=web("lead"), routes=["nope"]) is None


async def test_under_a_quorum_a_voter_moves_on_and_the_item_goes_to_the_next(
    system: System, integrator: Integrator
) -> None:
    shared = await submit(system, integrator, 0.5, route="pair")
    other = await submit(system, integrator, 0.9, route="pair")
    ann = await system.queue.next(reviewer=web("ann"))
    assert ann is not None and ann.id == shared
    await system.service.decide(item_id=shared, action="approve", actor=web("ann"))
    # still pending (1 of 2): ann has voted, so she gets the other item ...
    mine = await system.queue.next(reviewer=web("ann"))
    assert mine is not None and mine.id == other
    # ... and her old reservation does not keep bob from the shared one
    bob = await system.queue.next(reviewer=web("bob"))
    assert bob is not None and bob.id == shared and bob.approvals == 1


async def test_own_items_are_not_served_where_the_route_forbids_approving_them(
    system: System, integrator: Integrator
) -> None:
    own = await submit(system, integrator, 0.5, route="plain", requested_by="ann")
    allowed = await submit(system, integrator, 0.5, route="selfok", requested_by="ann")
    item = await system.queue.next(reviewer=web("ann"))
    assert item is not None and item.id == allowed
    assert (await system.queue.next(reviewer=web("bob"))).id == own  # type: ignore[union-attr]


async def test_the_boundary_follows_a_threshold_the_drift_alarm_raised(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    below = await submit(system, integrator, 0.57)  # 0.03 from 0.6; 0.075 from 0.645
    above = await submit(system, integrator, 0.66)  # 0.06 from 0.6; 0.015 from 0.645
    async with system.sessions() as session, session.begin():
        session.add(
            ConfigChange(
                route="support",
                key="thresholds.auto_approve_at",
                old_value=0.9,
                new_value=0.99,
                reason="drift",
                actor="signoff drift alarm",
                at=clock.now(),
            )
        )
    assert system.overrides is not None
    await system.overrides.refresh()
    first = await system.queue.next(reviewer=web("ann"))
    assert first is not None and first.id == above  # the boundary is now (0.3 + 0.99) / 2
    second = await system.queue.next(reviewer=web("bob"))
    assert second is not None and second.id == below


async def test_a_reviewer_at_the_daily_cap_is_served_other_routes(
    system: System, integrator: Integrator
) -> None:
    capped = [await submit(system, integrator, 0.5, route="capped") for _ in range(3)]
    other = await submit(system, integrator, 0.1, route="plain")
    for item_id in capped[:2]:
        assert (await system.queue.next(reviewer=web("ann"))).id == item_id  # type: ignore[union-attr]
        await system.service.decide(item_id=item_id, action="approve", actor=web("ann"))
    # two decisions today on "capped": its last item goes to others
    mine = await system.queue.next(reviewer=web("ann"))
    assert mine is not None and mine.id == other
    bob = await system.queue.next(reviewer=web("bob"))
    assert bob is not None and bob.id == capped[2]


async def test_label_items_go_through_the_same_queue(
    system: System, integrator: Integrator
) -> None:
    data = ItemCreate(
        route="plain",
        kind="label",
        title="Sentiment",
        content={"text": "Great service", "labels": ["positive"]},
        confidence=0.52,
    )
    label = (await system.service.submit(integrator=integrator, data=data)).item
    await submit(system, integrator, 0.7, route="plain")
    item = await system.queue.next(reviewer=web("ann"))
    assert item is not None and (item.id, item.kind) == (label.id, "label")


# -- the HTTP API --------------------------------------------------------------------


@pytest.fixture
async def api(system: System) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    key = await system.keys.create(name="review-tool")
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client, key.api_key


async def test_api_next_reserves_for_the_named_web_reviewer(
    system: System, integrator: Integrator, api: tuple[httpx.AsyncClient, str], clock: FrozenClock
) -> None:
    client, key = api
    auth = {"Authorization": f"Bearer {key}"}
    await system.web.auth.invite(name="ann", routes=["support"])
    await system.web.auth.invite(name="boss", routes=["*"])
    near = await submit(system, integrator, 0.61)
    far = await submit(system, integrator, 0.8)
    plain = await submit(system, integrator, 0.5, route="plain")  # not one of ann's routes

    answer = await client.get("/v1/queue/next", params={"reviewer": "ann"}, headers=auth)
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == near and body["state"] == "pending"
    assert body["reserved_by"] == "web:ann"
    assert body["reserved_until"].startswith((clock.now() + timedelta(minutes=5)).isoformat()[:19])
    ReservedItem.model_validate(body)
    again = await client.get("/v1/queue/next", params={"reviewer": "ann"}, headers=auth)
    assert again.json()["id"] == near

    boss = await client.get("/v1/queue/next", params={"reviewer": "boss"}, headers=auth)
    assert boss.json()["id"] == plain  # every route: 0.5 is on the plain route's boundary

    await system.service.decide(item_id=near, action="approve", actor=web("ann"))
    await system.service.decide(item_id=far, action="approve", actor=web("ann"))
    empty = await client.get("/v1/queue/next", params={"reviewer": "ann"}, headers=auth)
    assert empty.status_code == 204 and empty.content == b""


async def test_api_next_errors(api: tuple[httpx.AsyncClient, str]) -> None:
    client, key = api
    auth = {"Authorization": f"Bearer {key}"}
    missing = await client.get("/v1/queue/next", params={"reviewer": "ann"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = await client.get(
        "/v1/queue/next", params={"reviewer": "ann"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and "unknown API key" in wrong.json()["error"]["message"]
    nobody = await client.get("/v1/queue/next", params={"reviewer": "ghost"}, headers=auth)
    assert nobody.status_code == 404 and "ghost" in nobody.json()["error"]["message"]
    unnamed = await client.get("/v1/queue/next", headers=auth)
    assert unnamed.status_code == 422 and unnamed.json()["error"]["message"].startswith("reviewer:")
    schema = (await client.get("/openapi.json")).json()
    assert schema["paths"]["/v1/queue/next"]["get"]["security"] == [{"apiKey": []}]
