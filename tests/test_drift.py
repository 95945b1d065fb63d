"""The drift alarm: audits with a rising error rate start one alarm (one message, one
threshold raise) however many sweeps run; the raised threshold is in force for new
submissions. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select

from bot.app import System, build
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.drift import ACTOR, ALARM_KEY
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage import audits as audit_store
from storage.migrate import upgrade
from storage.models import ConfigChange
from tests.fakes.surface import RecordingSurface

ANN = Actor(surface="web", user_id="ann", name="ann")
CHANNEL = "C0ALERTS"


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "support": {
                    "surfaces": [{"type": "slack", "channel": CHANNEL}, {"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.9},
                    "audit": {"rate": 1.0},
                    "drift": {
                        "target_error": 0.05,
                        "window": 50,
                        "min_audits": 20,
                        "auto_raise": True,
                        "raise_by": 0.02,
                    },
                },
                "watch": {  # alarms without raising
                    "surfaces": [{"type": "slack", "channel": "C0WATCH"}],
                    "thresholds": {"auto_approve_at": 0.9},
                    "audit": {"rate": 1.0},
                    "drift": {"target_error": 0.05, "window": 20, "min_audits": 10},
                },
            }
        }
    )


@pytest.fixture
async def chat() -> RecordingSurface:
    return RecordingSurface(name="slack")


@pytest.fixture
async def system(
    db_url: str,
    routes: RouteTable,
    clock: FrozenClock,
    surface: RecordingSurface,
    chat: RecordingSurface,
) -> AsyncIterator[System]:
    sys_ = build(
        load_settings({"SIGNOFF_DATABASE_URL": db_url}),
        clock=clock,
        routes=routes,
        surfaces={"web": surface, "slack": chat},
    )
    await upgrade(sys_.engine)
    try:
        yield sys_
    finally:
        await sys_.close()


async def submit(
    system: System, integrator: Integrator, *, confidence: float, route: str = "support"
) -> str:
    data = ItemCreate(
        route=route, kind="message", title="Ship it", content={"text": "hi"}, confidence=confidence
    )
    item = (await system.service.submit(integrator=integrator, data=data)).item
    return item.outcome or item.state


async def audit(system: System, integrator: Integrator, *, wrong: int, of: int, route: str) -> None:
    """``of`` automatic approvals, audited; the first ``wrong`` of them judged wrong."""
    assert system.audits is not None
    for n in range(of):
        assert await submit(system, integrator, confidence=0.95, route=route) == "auto_approved"
        async with system.sessions() as session:
            [open_] = await audit_store.open_audits(session, routes=[route])
        assert open_.audit.id is not None
        verdict = "wrong" if n < wrong else "correct"
        await system.audits.answer(audit_id=open_.audit.id, verdict=verdict, actor=ANN)


async def changes(system: System, route: str) -> list[ConfigChange]:
    async with system.sessions() as session:
        query = select(ConfigChange).where(ConfigChange.route == route)
        return list((await session.exec(query.order_by(col(ConfigChange.id)))).all())


async def sweep_a_few(system: System, clock: FrozenClock) -> None:
    for _ in range(3):
        clock.advance(30)
        await system.sweeper.run_once()


async def test_a_rising_error_starts_one_alarm_and_one_raise(
    system: System, integrator: Integrator, clock: FrozenClock, chat: RecordingSurface
) -> None:
    await audit(system, integrator, wrong=0, of=20, route="support")
    await sweep_a_few(system, clock)
    assert chat.announcements == [] and await changes(system, "support") == []

    # 5 audits at a time, more of them wrong each time: 0/25, 1/30, 2/35 (5.7 % > 5 %) ...
    for wrong in (0, 1, 1, 2, 3, 4):
        await audit(system, integrator, wrong=wrong, of=5, route="support")
        await sweep_a_few(system, clock)

    [alert] = chat.announcements
    assert alert.channel == CHANNEL
    assert "Drift alarm on route support: 2 of the last 35 audited automatic approvals" in (
        alert.heading
    )
    assert "auto_approve_at raised from 0.9 to 0.92" in alert.heading
    alarm, raised = await changes(system, "support")
    assert alarm.key == ALARM_KEY and alarm.new_value["active"] is True
    assert (raised.key, raised.old_value, raised.new_value) == (
        "thresholds.auto_approve_at",
        0.9,
        0.92,
    )
    assert raised.actor == ACTOR and "5.7%" in raised.reason

    # in force at once: 0.91 now waits for a person, 0.93 is still decided alone
    assert await submit(system, integrator, confidence=0.91) == "pending"
    assert await submit(system, integrator, confidence=0.93) == "auto_approved"


async def test_a_window_of_new_bad_audits_starts_a_second_alarm_and_recovery_ends_it(
    system: System, integrator: Integrator, clock: FrozenClock, chat: RecordingSurface
) -> None:
    await audit(system, integrator, wrong=5, of=25, route="support")  # 20 %
    await sweep_a_few(system, clock)
    assert len(chat.announcements) == 1
    await audit(system, integrator, wrong=10, of=49, route="support")  # 49 new: same alarm
    await sweep_a_few(system, clock)
    assert len(chat.announcements) == 1
    await audit(system, integrator, wrong=1, of=1, route="support")  # the 50th: a new one
    await sweep_a_few(system, clock)
    assert len(chat.announcements) == 2
    assert "raised from 0.92 to 0.94" in chat.announcements[1].heading

    await audit(system, integrator, wrong=0, of=50, route="support")  # all good again
    await sweep_a_few(system, clock)
    assert len(chat.announcements) == 2
    ended = (await changes(system, "support"))[-1]
    assert ended.key == ALARM_KEY and ended.new_value["active"] is False
    assert "back to 0.0%" in ended.reason


async def test_without_auto_raise_the_alarm_only_speaks(
    system: System, integrator: Integrator, clock: FrozenClock, chat: RecordingSurface
) -> None:
    await audit(system, integrator, wrong=3, of=10, route="watch")
    await sweep_a_few(system, clock)
    [alert] = chat.announcements
    assert alert.channel == "C0WATCH" and "Thresholds unchanged" in alert.heading
    [alarm] = await changes(system, "watch")
    assert alarm.key == ALARM_KEY
    assert await submit(system, integrator, confidence=0.91, route="watch") == "auto_approved"


async def test_fewer_audits_than_the_minimum_raise_no_alarm(
    system: System, integrator: Integrator, clock: FrozenClock, chat: RecordingSurface
) -> None:
    await audit(system, integrator, wrong=9, of=9, route="watch")
    await sweep_a_few(system, clock)
    assert chat.announcements == [] and await changes(system, "watch") == []
