"""Change notices between replicas on PostgreSQL (LISTEN/NOTIFY on ``signoff_items``).

A change committed through one replica wakes a long poll held by another within a
second, with the reader's database re-check pushed out of the way so only the notice can
do it; notices are not echoed back; a dropped LISTEN connection comes back; a command-line
process's changes reach the serving replicas too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

import bot.reader
from bot.app import System, build, create_app
from bot.notify import Notifier
from bot.ports import Actor
from bot.routes import RouteTable
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
from storage.pg_notify import PgChangeFeed, asyncpg_dsn

pytestmark = pytest.mark.postgres


async def until(check: Callable[[], Any], *, within: float, what: str) -> float:
    """Poll ``check`` (in-process state, no timer under test) until true; seconds taken."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture
async def dsn(pg_module_database: str) -> str:
    return asyncpg_dsn(pg_module_database)


async def terminate(dsn: str, pid: int) -> None:
    """End one server session, as a PostgreSQL restart or a network cut would."""
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


def feed_pid(feed: PgChangeFeed) -> int:
    pid = feed._pid  # the LISTEN session's backend pid
    assert pid is not None
    return pid


async def test_a_notice_reaches_the_other_replica_once_and_is_never_echoed(dsn: str) -> None:
    heard: dict[str, list[str]] = {"a": [], "b": []}
    feeds = {}
    for name in ("a", "b"):
        notifier = Notifier()
        feed = PgChangeFeed(dsn=dsn, on_notice=notifier.received)
        notifier.publish_to(feed.publish)  # as bot.app wires it
        notifier.listen(heard[name].append)
        feed.start()
        feeds[name] = (notifier, feed)
    try:
        for _, feed in feeds.values():
            assert await feed.wait_connected(within=5)
        feeds["a"][0].changed("itm_1")
        assert heard["a"] == ["itm_1"]  # local listeners at once
        took = await until(lambda: heard["b"] == ["itm_1"], within=1.0, what="B hears A")
        feeds["b"][0].changed("itm_2")
        await until(lambda: heard["a"] == ["itm_1", "itm_2"], within=1.0, what="A hears B")
        # PostgreSQL delivers one session's notices in commit order: had A heard its own
        # itm_1, or had B passed it on, A would have heard itm_1 again before itm_2.
        assert heard == {"a": ["itm_1", "itm_2"], "b": ["itm_1", "itm_2"]}
        assert (feeds["a"][1].heard, feeds["b"][1].heard) == (1, 1)
        print(f"\nnotice A->B took {took * 1000:.1f} ms")
    finally:
        for _, feed in feeds.values():
            await feed.close()


async def test_the_feed_reconnects_and_sends_what_was_queued_meanwhile(dsn: str) -> None:
    heard: list[str] = []
    sender = PgChangeFeed(dsn=dsn, on_notice=lambda _id: None, retry_min_seconds=0.05)
    listener = PgChangeFeed(dsn=dsn, on_notice=heard.append, retry_min_seconds=0.05)
    sender.start()
    listener.start()
    try:
        assert await sender.wait_connected(within=5)
        assert await listener.wait_connected(within=5)
        old = feed_pid(listener)
        await terminate(dsn, old)
        await until(
            lambda: listener.connected and listener._pid not in (None, old),
            within=5,
            what="the listener reconnects",
        )
        await terminate(dsn, feed_pid(sender))
        sender.publish("itm_while_down")  # queued, or re-queued when the send fails
        await until(lambda: heard == ["itm_while_down"], within=5, what="the queued notice")
    finally:
        await sender.close()
        await listener.close()


# -- two replicas, in one process -------------------------------------------------------


def settings_for(url: str) -> Any:
    return load_settings(
        {"SIGNOFF_DATABASE_URL": url, "SIGNOFF_SWEEP_ENABLED": "false"},
    )


@contextlib.asynccontextmanager
async def replica(url: str, routes: RouteTable) -> AsyncIterator[tuple[System, FastAPI]]:
    """A replica: its own engine, notifier and LISTEN connection, lifespan running."""
    system = build(settings_for(url), routes=routes)
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with app.router.lifespan_context(app):
        assert system.feed is not None and await system.feed.wait_connected(within=5)
        yield system, app


@pytest.fixture
async def url(pg_module_database: str) -> str:
    system = build(settings_for(pg_module_database))
    try:
        await upgrade(system.engine)
    finally:
        await system.close()
    return pg_module_database


def draft() -> ItemCreate:
    return ItemCreate(route="support", kind="message", title="Hi", content={"text": "hello"})


LEAD = Actor(surface="web", user_id="lead", name="lead")


async def test_a_decision_on_replica_a_wakes_a_long_poll_on_replica_b_within_1s(
    url: str, routes: RouteTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader re-checks the database every second for notices it missed; pushed far
    # out here, only the NOTIFY from replica A can wake replica B's long poll in time.
    monkeypatch.setattr(bot.reader, "RECHECK_SECONDS", 30.0)
    async with replica(url, routes) as (a, _), replica(url, routes) as (b, b_app):
        key = await a.keys.create(name="agent")
        integrator = await a.keys.authenticate(key.api_key)
        assert integrator is not None
        transport = httpx.ASGITransport(app=b_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
            for _ in range(3):  # a few rounds: no lucky timing
                item = (await a.service.submit(integrator=integrator, data=draft())).item
                poll = asyncio.create_task(
                    client.get(
                        f"/v1/items/{item.id}",
                        params={"wait": 20},
                        headers={"Authorization": f"Bearer {key.api_key}"},
                    )
                )
                held = partial(b.notifier._events.__contains__, item.id)
                await until(held, within=5, what="B's long poll waits")
                decided_at = time.monotonic()
                await a.service.decide(item_id=item.id, action="approve", actor=LEAD)
                answer = await poll
                woke = time.monotonic() - decided_at
                assert answer.status_code == 200 and answer.json()["state"] == "approved"
                assert woke < 1.0, f"B's long poll woke {woke:.3f}s after A's decision"
                print(f"\nlong poll on B woke {woke * 1000:.1f} ms after A decided")


async def test_a_command_line_process_change_reaches_the_serving_replica(
    url: str, routes: RouteTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.reader, "RECHECK_SECONDS", 30.0)
    async with replica(url, routes) as (serving, _):
        key = await serving.keys.create(name="cli-agent")
        integrator = await serving.keys.authenticate(key.api_key)
        assert integrator is not None
        item = (await serving.service.submit(integrator=integrator, data=draft())).item
        waiting = asyncio.create_task(serving.reader.wait(item_id=item.id, within=20))
        await until(lambda: item.id in serving.notifier._events, within=5, what="waiting")
        # What `signoff decide` does (bot/cli.py: build, work, close): no lifespan, no
        # LISTEN; its notice is sent when the system closes.
        cli = build(settings_for(url), routes=routes)
        try:
            await cli.service.decide(
                item_id=item.id, action="reject", actor=LEAD, reason_code="wrong tone"
            )
        finally:
            closed_at = time.monotonic()
            await cli.close()
        seen = await waiting
        assert seen.state == "rejected"
        assert time.monotonic() - closed_at < 1.0


async def test_sqlite_has_no_feed(sqlite_url: str, routes: RouteTable) -> None:
    system = build(settings_for(sqlite_url), routes=routes)
    try:
        assert system.feed is None
    finally:
        await system.close()
