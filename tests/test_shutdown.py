"""Graceful shutdown: on SIGTERM a replica stops taking work, lets in-flight deliveries
finish within ``SIGNOFF_SHUTDOWN_GRACE_SECONDS``, hands back what it still holds (outbox
rows, sweep steps) so another replica takes it at once, and exits within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.app import System, build, create_app
from bot.clock import FrozenClock
from bot.ports import DeliveryRequest
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from bot.shutdown import Shutdown, drain_seconds
from storage import outbox as outbox_store
from storage import steps as step_store
from storage.migrate import upgrade
from tests.fakes.surface import RecordingSurface
from tests.process import Server, free_port, signoff_env

# -- the drain deadline ------------------------------------------------------------------


class Ticks:
    """An injected monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_at_the_deadline_the_work_still_running_is_cancelled() -> None:
    ticks = Ticks()
    shutdown = Shutdown(grace_seconds=20, monotonic=ticks)
    began: list[str] = []
    shutdown.on_begin(lambda: began.append("scheduler paused"))
    assert shutdown.remaining() == drain_seconds(20) == 18.0  # 2 s kept to hand back

    shutdown.begin()
    shutdown.begin()  # a second signal changes nothing
    assert began == ["scheduler paused"] and shutdown.stopping.is_set()
    ticks.now += 17.5
    assert shutdown.remaining() == pytest.approx(0.5)

    finished = asyncio.create_task(asyncio.sleep(0))
    await finished
    stuck = asyncio.create_task(asyncio.Event().wait())
    ticks.now += 1  # past the deadline: settle waits no longer
    assert await shutdown.settle([finished, stuck]) == 1
    assert stuck.cancelled() and not finished.cancelled()
    assert drain_seconds(2) == 1.5 and drain_seconds(0) == 0


# -- handing back, in process (SQLite and PostgreSQL) ------------------------------------


class StuckTarget:
    """A release target that never answers (a receiver slower than the grace period)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def deliver(self, *, request: DeliveryRequest) -> str:
        self.started.set()
        await asyncio.Event().wait()
        return "never"


class RecordingTarget:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def deliver(self, *, request: DeliveryRequest) -> str:
        self.keys.append(request.idempotency_key)
        return "HTTP 200"


class StuckSurface(RecordingSurface):
    """A chat surface whose reminders hang."""

    def __init__(self) -> None:
        super().__init__(name="slack")
        self.nudging = asyncio.Event()

    async def nudge(self, **_: Any) -> None:
        self.nudging.set()
        await asyncio.Event().wait()


ROUTES = {
    "routes": {
        "ship": {
            "surfaces": [{"type": "slack", "channel": "C1"}],
            "thresholds": {"auto_approve_at": 0.9},
            "target": {"type": "webhook", "url": "http://127.0.0.1:9/release"},
            "callback_hosts": ["127.0.0.1"],
            "allow_private_callbacks": True,
            "escalation": [{"after": "30m", "do": "nudge"}],
        }
    }
}


@contextlib.asynccontextmanager
async def replica(url: str, clock: FrozenClock, **edges: Any) -> AsyncIterator[System]:
    system = build(
        load_settings({"SIGNOFF_DATABASE_URL": url}),
        clock=clock,
        routes=parse_routes(ROUTES),
        **edges,
    )
    await upgrade(system.engine)
    try:
        yield system
    finally:
        await system.close()


def item(confidence: float) -> ItemCreate:
    return ItemCreate(
        route="ship", kind="message", title="Hi", content={"text": "hi"}, confidence=confidence
    )


async def test_a_cancelled_delivery_is_handed_back_and_another_worker_takes_it_now(
    db_url: str,
) -> None:
    clock = FrozenClock()
    stuck, fine = StuckTarget(), RecordingTarget()
    surfaces = {"slack": RecordingSurface(name="slack")}
    async with (
        replica(db_url, clock, targets={"webhook": stuck}, surfaces=surfaces) as a,
        replica(db_url, clock, targets={"webhook": fine}, surfaces=surfaces) as b,
    ):
        key = await a.keys.create(name="agent")
        integrator = await a.keys.authenticate(key.api_key)
        assert integrator is not None
        auto = (await a.service.submit(integrator=integrator, data=item(0.95))).item
        delivering = asyncio.create_task(a.worker.run_once())
        await stuck.started.wait()
        assert await b.worker.run_once() == 0  # A's lease holds the row
        assert await b.worker._idle_seconds() == 5.0  # B waits for it, no busy loop
        delivering.cancel()  # the grace period is over
        with contextlib.suppress(asyncio.CancelledError):
            await delivering
        assert await a.worker.hand_back() == 1
        assert await a.worker.hand_back() == 0  # nothing left
        async with b.sessions() as session:
            [row] = await outbox_store.deliveries_for(session, item_id=auto.id)
        assert (row.state, row.claimed_until, row.attempts) == ("queued", None, 0)
        # Same instant: no lease had to run out.
        assert await b.worker.run_once() == 1
        assert fine.keys == [row.idempotency_key]
        assert (await b.reader.get(item_id=auto.id)).release_state == "released"


async def test_a_cancelled_sweep_hands_its_steps_back(db_url: str) -> None:
    clock = FrozenClock()
    stuck, fine = StuckSurface(), RecordingSurface(name="slack")
    async with (
        replica(db_url, clock, surfaces={"slack": stuck}) as a,
        replica(db_url, clock, surfaces={"slack": fine}) as b,
    ):
        key = await a.keys.create(name="agent")
        integrator = await a.keys.authenticate(key.api_key)
        assert integrator is not None
        pending = (await a.service.submit(integrator=integrator, data=item(0.5))).item
        clock.advance(31 * 60)  # the 30m nudge is due
        sweeping = asyncio.create_task(a.sweeper.run_once())
        await stuck.nudging.wait()
        assert (await b.sweeper.run_once()).recovered == 0  # A's claim holds
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        async with asyncio.timeout(1):
            await a.sweeper.idle()
        assert await a.sweeper.hand_back() == 1
        report = await b.sweeper.run_once()  # same instant: no lease had to run out
        assert report.recovered == 1 and report.nudged == 1
        assert [n.card.item_id for n in fine.nudges] == [pending.id]
        async with b.sessions() as session:
            [run] = await step_store.runs_for(session, item_id=pending.id)
        assert (run.state, run.attempts) == ("done", 1)


# -- a real `signoff serve`, SIGTERMed mid-delivery ---------------------------------------


class GatedReceiver:
    """A webhook receiver that holds each request until its item's gate opens, and applies
    each ``Idempotency-Key`` once (as a target that honours the key does)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str, float]] = []  # title, key, when
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.effects: Counter[str] = Counter()
        self._applied: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        for gate in self.gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def titles(self) -> list[str]:
        return [title for title, _, _ in self.arrivals]

    async def _handle(self, request: web.Request) -> web.Response:
        title = (await request.json())["item"]["title"]
        key = request.headers["Idempotency-Key"]
        self.arrivals.append((title, key, time.monotonic()))
        await self.gates[title].wait()
        if key not in self._applied:
            self._applied.add(key)
            self.effects[title] += 1
        return web.json_response({"ok": True})


async def until(check: Any, *, within: float, what: str) -> None:
    """Poll real processes' effects until ``check()``; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.01)


async def until_async(read: Any, check: Any, *, what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check(await read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.05)


GRACE = 4.0


@pytest.mark.postgres
async def test_sigterm_mid_delivery_exits_within_grace_and_the_next_replica_delivers_once(
    pg_module_database: str, tmp_path: Path
) -> None:
    hook_port = free_port()
    config = tmp_path / "signoff.yaml"
    routes = {"routes": {"ship": {**ROUTES["routes"]["ship"], "surfaces": [{"type": "web"}]}}}
    routes["routes"]["ship"]["target"] = {
        "type": "webhook",
        "url": f"http://127.0.0.1:{hook_port}/release",
    }
    config.write_text(yaml.safe_dump(routes))
    settings = {
        "SIGNOFF_DATABASE_URL": pg_module_database,
        "SIGNOFF_CONFIG": str(config),
        "SIGNOFF_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "SIGNOFF_RELEASE_TIMEOUT_SECONDS": "30",  # the lease is 150 s: it never runs out here
        "SIGNOFF_SWEEP_ENABLED": "false",
    }
    # Two releases queued before any server runs: replica A claims both at once.
    setup = build(load_settings(settings))
    try:
        await upgrade(setup.engine)
        key = await setup.keys.create(name="agent")
        integrator = await setup.keys.authenticate(key.api_key)
        assert integrator is not None
        ids = {}
        for title in ("slow", "quick"):
            data = item(0.95).model_copy(update={"title": title})
            ids[title] = (await setup.service.submit(integrator=integrator, data=data)).item.id
    finally:
        await setup.close()

    receiver = GatedReceiver()
    await receiver.start(hook_port)
    a_port = free_port()
    a = Server(
        ["signoff", "serve"], env=signoff_env(**settings, SIGNOFF_PORT=str(a_port)), port=a_port
    )
    b = build(load_settings(settings))  # replica B, in this process: own engine and LISTEN
    b_app = create_app(b, migrate=False, run_scheduler=False)
    try:
        await asyncio.to_thread(a.start)
        await until(
            lambda: sorted(receiver.titles()) == ["quick", "slow"], within=10, what="A delivers"
        )
        async with b_app.router.lifespan_context(b_app):  # B finds both rows claimed by A
            assert b.feed is not None and await b.feed.wait_connected(within=5)
            assert a.proc is not None
            os.killpg(a.proc.pid, signal.SIGTERM)
            sigterm = time.monotonic()
            await asyncio.sleep(0.3)  # the quick receiver answers a moment into A's drain
            receiver.gates["quick"].set()
            await asyncio.to_thread(a.proc.wait, GRACE + 10)
            stopped = time.monotonic() - sigterm
            a_log = a.stop()
            await until(lambda: receiver.titles().count("slow") == 2, within=10, what="B delivers")
            taken_over = receiver.arrivals[-1][2] - sigterm
            receiver.gates["slow"].set()

            async def rows() -> dict[str, Any]:
                async with b.sessions() as session:
                    found = [
                        row
                        for item_id in ids.values()
                        for row in await outbox_store.deliveries_for(session, item_id=item_id)
                    ]
                return {r.item_id: (r.state, r.attempts) for r in found}

            await until_async(
                rows, lambda found: found[ids["slow"]][0] == "delivered", what="B records it"
            )
            final = await rows()
    finally:
        a.stop()
        await receiver.stop()

    print(f"\nSIGTERM -> exit {stopped:.2f}s (grace {GRACE}s); B took the handed-back release")
    print(f"{taken_over:.2f}s after the SIGTERM")
    assert stopped < GRACE, a_log
    assert "handed back 1 claimed deliveries" in a_log, a_log
    # The quick delivery finished during the drain and was recorded by A, once.
    assert receiver.titles().count("quick") == 1 and final[ids["quick"]] == ("delivered", 1)
    # The slow one was handed back (its cut attempt not counted) and B delivered it with
    # the same key: two requests, one effect. B did not wait for the 150 s lease.
    slow_keys = {k for title, k, _ in receiver.arrivals if title == "slow"}
    assert len(slow_keys) == 1 and receiver.effects == Counter({"slow": 1, "quick": 1})
    assert final[ids["slow"]] == ("delivered", 1)
    assert taken_over < GRACE + 1.0
