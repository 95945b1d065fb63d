"""Gateway leadership: one replica at a time holds the PostgreSQL advisory lock and runs
the Discord gateway; a killed leader is replaced within seconds; a leader whose lock
connection drops closes its gateway session at once. On SQLite the one process leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import discord.gateway
import discord.http
import httpx
import pytest
from fastapi import FastAPI

from bot.app import System, build, create_app
from bot.routes import RouteTable
from bot.settings import load_settings
from storage.migrate import upgrade
from storage.pg_leader import GATEWAY_LOCK_KEY, PgAdvisoryLock
from storage.pg_notify import asyncpg_dsn
from tests.fakes.discord import DiscordFake
from tests.process import Server, free_port, signoff_env


async def until(check: Callable[[], Any], *, within: float, what: str) -> float:
    """Poll ``check`` until true (state of real processes and sockets); seconds taken."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def terminate(dsn: str, pid: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def lock_holders(dsn: str) -> list[int]:
    """Server pids holding the gateway lock in this database (pg_locks)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
            GATEWAY_LOCK_KEY,
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


@pytest.fixture
def dsn(pg_module_database: str) -> str:
    return asyncpg_dsn(pg_module_database)


@pytest.mark.postgres
async def test_one_holder_at_a_time_and_a_dropped_session_frees_the_lock(dsn: str) -> None:
    a, b = PgAdvisoryLock(dsn=dsn), PgAdvisoryLock(dsn=dsn)
    try:
        assert await a.acquire() and a.held
        assert not await b.acquire() and not b.held
        assert await a.acquire()  # held: a liveness check, still held
        assert await lock_holders(dsn) == [a.backend_pid]
        pid = a.backend_pid
        assert pid is not None
        await terminate(dsn, pid)  # the session ends, as when the process is killed
        took = await until(lambda: not a.held, within=2, what="A learns its lock is gone")
        async with asyncio.timeout(1):
            await a.lost()
        assert await b.acquire() and b.held
        assert not await a.acquire()
        assert await lock_holders(dsn) == [b.backend_pid]
        await b.release()
        assert not b.held and await a.acquire()
        print(f"\nA noticed the dropped lock session after {took * 1000:.0f} ms")
    finally:
        await a.release()
        await b.release()


# -- in process: the Discord gateway follows the lock ------------------------------------


@pytest.fixture
def restore_discord_urls() -> Iterator[None]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


def sessions(fake: DiscordFake) -> int:
    """Identified gateway sessions open at the fake now."""
    return sum(1 for c in fake._conns if c.identify is not None and not c.ws.closed)


@contextlib.asynccontextmanager
async def replica(
    url: str, fake: DiscordFake, *, retry: float
) -> AsyncIterator[tuple[System, FastAPI]]:
    settings = load_settings(
        {
            "SIGNOFF_DATABASE_URL": url,
            "SIGNOFF_SWEEP_ENABLED": "false",
            "SIGNOFF_LEADER_RETRY_SECONDS": str(retry),
            "SIGNOFF_DISCORD_TOKEN": "token",
            "SIGNOFF_DISCORD_API_URL": fake.rest_url,
            "SIGNOFF_DISCORD_GATEWAY_URL": fake.gateway_url,
        }
    )
    system = build(settings, routes=RouteTable({}))
    await upgrade(system.engine)
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with app.router.lifespan_context(app):
        yield system, app


async def healthz(app: FastAPI) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        answer = await client.get("/healthz")
        assert answer.status_code == 200
        return answer.json()


@pytest.mark.postgres
async def test_only_the_leader_opens_the_gateway_and_closes_it_when_its_lock_drops(
    pg_module_database: str, dsn: str, restore_discord_urls: None
) -> None:
    async with (
        DiscordFake(token="token") as fake,
        # A deposed replica follows for a retry interval before trying again: A's
        # longer one lets B, trying every 0.2 s, take over first.
        replica(pg_module_database, fake, retry=3.0) as (a, a_app),
        replica(pg_module_database, fake, retry=0.2) as (b, b_app),
    ):
        await until(lambda: sessions(fake) == 1, within=10, what="one gateway session")
        assert (await healthz(a_app))["leader"] is True  # A started first and leads
        assert (await healthz(b_app))["leader"] is False
        metrics = httpx.AsyncClient(transport=httpx.ASGITransport(app=b_app), base_url="http://r")
        async with metrics:
            assert "\nsignoff_leader 0\n" in (await metrics.get("/metrics")).text

        lock = a.leader._lock
        assert isinstance(lock, PgAdvisoryLock) and lock.backend_pid is not None
        await terminate(dsn, lock.backend_pid)
        closed = await until(
            lambda: not a.leader.leading and a.discord is not None and a.discord._task is None,
            within=2,
            what="A stops its gateway",
        )
        took = await until(lambda: b.leader.leading, within=5, what="B takes the lead")
        await until(lambda: sessions(fake) == 1, within=5, what="B's gateway session")
        assert (await healthz(b_app))["leader"] is True
        assert (await healthz(a_app))["leader"] is False
        assert a.discord is not None and not a.discord.bot.ws.open  # A's session is closed
        print(f"\nA closed its gateway {closed * 1000:.0f} ms after its lock dropped; B led")
        print(f"{took * 1000:.0f} ms later")


# -- real processes ------------------------------------------------------------------------


def start(url: str, *, retry: str = "0.3") -> Server:
    port = free_port()
    env = signoff_env(
        SIGNOFF_DATABASE_URL=url,
        SIGNOFF_PORT=str(port),
        SIGNOFF_LEADER_RETRY_SECONDS=retry,
        SIGNOFF_SWEEP_ENABLED="false",
        SIGNOFF_LOG_LEVEL="warning",
    )
    return Server(["signoff", "serve"], env=env, port=port)


@pytest.mark.postgres
async def test_killing_the_leader_process_hands_the_lead_to_another_within_10s(
    pg_module_database: str, dsn: str
) -> None:
    servers = [start(pg_module_database), start(pg_module_database)]
    await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))  # they start together
    samples: list[tuple[bool | None, ...]] = []
    stop = asyncio.Event()

    async def health(client: httpx.AsyncClient, server: Server) -> bool | None:
        try:
            leader = (await client.get(f"{server.base}/healthz", timeout=1)).json()["leader"]
            return bool(leader)
        except httpx.HTTPError:
            return None  # killed

    async def watch() -> None:  # both replicas' /healthz, all along
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                samples.append(tuple(await asyncio.gather(*(health(client, s) for s in servers))))
                await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await until(
            lambda: bool(samples) and sorted(map(str, samples[-1])) == ["False", "True"],
            within=10,
            what="one leader, one follower",
        )
        leader = servers[samples[-1].index(True)]
        follower = servers[samples[-1].index(False)]
        assert len(await lock_holders(dsn)) == 1
        assert leader.proc is not None
        os.killpg(leader.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        await until(
            lambda: samples[-1][servers.index(follower)] is True,
            within=10,
            what="the follower leads",
        )
        takeover = time.monotonic() - killed_at
    finally:
        stop.set()
        await watcher
        for server in servers:
            server.stop()
    assert takeover < 10.0
    assert all(sample.count(True) <= 1 for sample in samples), "two leaders at once"
    print(f"\ntakeover after SIGKILL: {takeover:.2f}s ({len(samples)} /healthz samples)")


async def test_on_sqlite_the_one_process_leads(sqlite_url: str, routes: RouteTable) -> None:
    system = build(load_settings({"SIGNOFF_DATABASE_URL": sqlite_url}), routes=routes)
    assert system.feed is None
    app = create_app(system, run_worker=False, run_scheduler=False)
    async with app.router.lifespan_context(app):
        assert await healthz(app) == {"status": "ok", "leader": True}
