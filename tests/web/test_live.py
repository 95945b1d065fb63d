"""Live updates across processes: the change watcher, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bot.app import System, build
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.ports import Actor
from bot.routes import RouteTable
from bot.schemas import ItemCreate
from bot.settings import load_settings
from tests.fakes.surface import RecordingSurface

EMAIL = {"to": ["jane@example.com"], "subject": "s", "body": "b"}


async def test_changes_by_another_process_are_published_once(
    system: System, integrator: Integrator, db_url: str, routes: RouteTable, clock: FrozenClock
) -> None:
    data = ItemCreate(route="support", kind="email", title="t", content=EMAIL, confidence=0.5)
    item = (await system.service.submit(integrator=integrator, data=data)).item
    stream = system.broadcaster.stream(keepalive=60)
    assert await anext(stream) == "retry: 1000\n\n"
    assert await system.watcher.poll() == 0  # the first poll only learns where we are

    other = build(
        load_settings({"SIGNOFF_DATABASE_URL": db_url}),
        clock=clock,
        routes=routes,
        surfaces={"web": RecordingSurface()},
    )
    try:  # "another replica": its notifier and broadcaster are not ours
        clock.advance(60)
        await other.service.decide(
            item_id=item.id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
        )
    finally:
        await other.close()

    assert await system.watcher.poll() == 1
    event = await asyncio.wait_for(anext(stream), timeout=1)
    assert event == f'event: item\ndata: {{"id": "{item.id}"}}\n\n'
    assert await system.watcher.poll() == 0  # not published twice
    await stream.aclose()


async def test_an_empty_database_is_watched_too(system: System, integrator: Integrator) -> None:
    assert await system.watcher.poll() == 0  # nothing yet
    data = ItemCreate(route="support", kind="email", title="t", content=EMAIL, confidence=0.5)
    await system.service.submit(integrator=integrator, data=data)
    assert await system.watcher.poll() == 1
