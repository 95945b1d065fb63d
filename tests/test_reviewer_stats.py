"""Per-reviewer statistics and the daily cap, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlmodel import col, select

from bot.app import System
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.errors import NotAllowed
from bot.ports import Actor
from bot.reviewer_stats import ReviewerStats, duration, reviewer_stats, route_now
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage import reviewer_stats as store
from storage.models import Item

SHOULD_REJECT = {
    "kind": "message",
    "title": "Post the outage note",
    "content": {"text": "All systems are fine, nothing to see here (there is an outage)."},
    "expected": "reject",
}


@pytest.fixture
def routes(tmp_path: Path) -> RouteTable:
    gold = tmp_path / "gold.yaml"
    gold.write_text(yaml.safe_dump([SHOULD_REJECT]))
    return parse_routes(
        {
            "routes": {
                "support": {"surfaces": [{"type": "web"}], "gold": {"file": str(gold), "rate": 1}},
                "capped": {"surfaces": [{"type": "web"}], "review": {"daily_cap": 3}},
                "local": {
                    "surfaces": [{"type": "web"}],
                    "review": {"daily_cap": 1},
                    "working_hours": {"timezone": "America/New_York"},
                },
                "other": {"surfaces": [{"type": "web"}]},
            }
        }
    )


def web(name: str) -> Actor:
    return Actor(surface="web", user_id=name, name=name)


async def submit(system: System, integrator: Integrator, route: str, text: str = "v1.2") -> str:
    data = ItemCreate(route=route, kind="message", title="Note", content={"text": text})
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def gold_ids(system: System) -> list[str]:
    async with system.sessions() as session:
        query = select(Item.id).where(col(Item.gold_expected).is_not(None))
        return list((await session.exec(query)).all())


def by_key(stats: tuple[ReviewerStats, ...]) -> dict[str, ReviewerStats]:
    return {r.key: r for r in stats}


# -- statistics --------------------------------------------------------------------------


async def test_a_reviewer_who_approves_bad_gold_scores_zero(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    assert system.gold is not None
    system.gold.rng = random.Random(1)
    real = [await submit(system, integrator, "support", f"note {n}") for n in range(4)]
    gold = await gold_ids(system)
    assert len(gold) == 4  # rate 1: one after each real item
    clock.advance(90)
    for item_id in gold[:3]:  # approves what should be rejected
        await system.service.decide(item_id=item_id, action="approve", actor=web("ann"))
    await system.service.decide(
        item_id=gold[3], action="reject", actor=web("bob"), reason_text="not true"
    )
    for item_id in real[:2]:
        await system.service.decide(item_id=item_id, action="approve", actor=web("bob"))
    await system.service.decide(
        item_id=real[2], action="reject", actor=web("bob"), reason_text="typo"
    )

    report = await reviewer_stats(system.sessions, routes=None, now=clock.now())
    stats = by_key(report.reviewers)
    ann, bob = stats["web:ann"], stats["web:bob"]
    assert (ann.gold_graded, ann.gold_correct, ann.gold_accuracy) == (3, 0, 0.0)
    assert ann.gold_accuracy_text == "0 %" and ann.approval_rate == 1.0
    assert (bob.gold_graded, bob.gold_correct, bob.gold_accuracy) == (1, 1, 1.0)
    assert bob.decisions == 4 and bob.approvals == 2 and bob.rejections == 2
    assert bob.approval_rate == 0.5 and bob.approval_rate_text == "50 %"
    assert ann.median_seconds == 90 and ann.median_text == "1.5 min"
    assert ann.today == 3 and bob.today == 4
    assert [r.key for r in report.reviewers] == ["web:bob", "web:ann"]  # most decisions first
    assert report.as_json()["reviewers"][1]["gold_accuracy"] == 0.0


async def test_rubber_stamps_speed_and_the_window(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    old = await submit(system, integrator, "other")
    await system.service.decide(item_id=old, action="approve", actor=web("ann"))
    clock.advance(timedelta(days=31))
    quick = await submit(system, integrator, "other", "x" * 400)  # 10 s to read at 40/s
    slow = await submit(system, integrator, "other", "y" * 400)
    clock.advance(1)
    await system.service.decide(item_id=quick, action="approve", actor=web("ann"))
    clock.advance(59)
    await system.service.decide(item_id=slow, action="approve", actor=web("ann"))

    report = await reviewer_stats(system.sessions, routes=["other"], now=clock.now())
    [ann] = report.reviewers
    assert ann.decisions == 2  # the one 31 days ago is outside the 30-day window
    assert ann.rubber_stamps == 1 and ann.median_seconds == 30.5
    assert ann.gold_graded == 0 and ann.gold_accuracy is None and ann.gold_accuracy_text == "—"
    longer = await reviewer_stats(system.sessions, routes=None, now=clock.now(), days=40)
    assert longer.reviewers[0].decisions == 3
    assert (
        await reviewer_stats(system.sessions, routes=["support"], now=clock.now())
    ).reviewers == ()


async def test_opened_time_is_the_time_to_decide_where_known(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator, "other")
    clock.advance(3600)
    opened = clock.now()
    clock.advance(20)
    await system.service.decide(
        item_id=item_id, action="approve", actor=web("ann"), opened_at=opened
    )
    [ann] = (await reviewer_stats(system.sessions, routes=None, now=clock.now())).reviewers
    assert ann.median_seconds == 20


async def test_bad_arguments_are_named(system: System) -> None:
    now = FrozenClock().now()
    with pytest.raises(ValueError, match=r"days must be in 1\.\.366, not 0"):
        await reviewer_stats(system.sessions, routes=None, now=now, days=0)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        await reviewer_stats(system.sessions, routes=None, now=now.replace(tzinfo=None))
    with pytest.raises(ValueError, match="actor_key must be 'surface:user id'"):
        store.split_actor_key("ann")
    assert duration(None) == "—" and duration(42) == "42 s" and duration(7200) == "2 h"


# -- the daily cap -----------------------------------------------------------------------


async def test_the_daily_cap_refuses_the_next_decision(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    items = [await submit(system, integrator, "capped", f"n{n}") for n in range(5)]
    for item_id in items[:3]:
        await system.service.decide(item_id=item_id, action="approve", actor=web("ann"))
    message = "ann has reached the daily cap of 3 decisions on route 'capped'; others will take it"
    with pytest.raises(NotAllowed) as caught:
        await system.service.decide(item_id=items[3], action="approve", actor=web("ann"))
    assert caught.value.message == message
    with pytest.raises(NotAllowed, match="daily cap"):  # surfaces hear it before deciding
        await system.service.precheck(item_id=items[3], action="reject", actor=web("ann"))
    with pytest.raises(NotAllowed, match="daily cap"):
        await system.service.decide(
            item_id=items[3], action="reject", actor=web("ann"), reason_text="no"
        )
    # others take it; other routes are not capped
    await system.service.decide(item_id=items[3], action="approve", actor=web("bob"))
    await system.service.decide(
        item_id=await submit(system, integrator, "other"), action="approve", actor=web("ann")
    )
    # a new (UTC) day, a new allowance
    clock.advance(timedelta(days=1))
    await system.service.decide(item_id=items[4], action="approve", actor=web("ann"))


async def test_the_queue_helper_reports_capped_reviewers(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    for n in range(3):
        item_id = await submit(system, integrator, "capped", f"n{n}")
        await system.service.decide(item_id=item_id, action="approve", actor=web("ann"))
    now = clock.now()
    async with system.sessions() as session:
        assert await store.capped(session, route="capped", actor_key="web:ann", now=now, cap=3)
        assert not await store.capped(session, route="capped", actor_key="web:ann", now=now, cap=4)
        assert not await store.capped(session, route="capped", actor_key="web:bob", now=now, cap=3)
        assert not await store.capped(session, route="other", actor_key="web:ann", now=now, cap=3)
        assert not await store.capped(
            session, route="capped", actor_key="web:ann", now=now, cap=None
        )
        tomorrow = now + timedelta(days=1)
        assert not await store.capped(
            session, route="capped", actor_key="web:ann", now=tomorrow, cap=3
        )


async def test_the_day_is_the_working_hours_day(
    system: System, integrator: Integrator, clock: FrozenClock, routes: RouteTable
) -> None:
    """09:00 UTC is 04:00 in New York; at 02:00 UTC the next day it is still 21:00 there."""
    first = await submit(system, integrator, "local", "a")
    second = await submit(system, integrator, "local", "b")
    await system.service.decide(item_id=first, action="approve", actor=web("ann"))
    clock.advance(timedelta(hours=17))  # a new UTC day, the same New York day
    local = route_now(routes.get("local"), clock.now())
    assert local.tzinfo == ZoneInfo("America/New_York") and local.hour == 21
    with pytest.raises(NotAllowed, match="daily cap of 1 decisions on route 'local'"):
        await system.service.decide(item_id=second, action="approve", actor=web("ann"))
    clock.advance(timedelta(hours=3, minutes=30))  # 00:30 in New York
    await system.service.decide(item_id=second, action="approve", actor=web("ann"))
