"""The real signoff app for the client: in-process (ASGI) for the async client, and
served by uvicorn in a thread for the sync one.

Reviewers decide from a task on the server's event loop. ``polls`` receives an item's
id each time the server starts holding a long poll on it (the reader's wait is
registered by then), so a test decides *while* the client waits, without sleeping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bot.app import System, build, create_app
from bot.client import AsyncSignoff
from bot.clock import FrozenClock
from bot.ports import Actor
from bot.routes import parse_routes
from bot.schemas import ItemPublic
from bot.settings import load_settings
from storage.migrate import upgrade

T = TypeVar("T")

ROUTES = {
    "routes": {
        "ops": {
            "surfaces": [{"type": "web"}],
            "reject_reasons": ["wrong tone", "not needed"],
            "thresholds": {"auto_approve_at": 0.99, "auto_reject_below": 0.2},
            "callback_hosts": ["127.0.0.1"],
            "allow_private_callbacks": True,
        },
    }
}


async def start_system(db_path: Path) -> tuple[System, str, str]:
    """A migrated system on SQLite, an API key and its signing secret."""
    system = build(
        load_settings({"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}"}),
        clock=FrozenClock(),
        routes=parse_routes(ROUTES),
    )
    await upgrade(system.engine)
    key = await system.keys.create(name="agent")
    return system, key.api_key, key.signing_secret


def app_of(system: System) -> FastAPI:
    return create_app(system, migrate=False, run_worker=False, run_scheduler=False)


class Polls:
    """Item ids, one each time the server holds a long poll on the item."""

    def __init__(self, system: System) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        original = system.notifier.wait

        async def wait(item_id: str, *, within: float) -> bool:
            self.queue.put_nowait(item_id)
            return await original(item_id, within=within)

        system.notifier.wait = wait  # type: ignore[method-assign]

    def reset(self) -> None:
        self.queue = asyncio.Queue()


async def decide_when_polled(
    system: System,
    polls: Polls,
    action: str,
    *,
    rounds: int = 1,
    content: dict[str, Any] | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
) -> ItemPublic:
    """Decide the item the client long-polls, during its ``rounds``-th poll."""
    for _ in range(rounds):
        item_id = await polls.queue.get()
    return await system.service.decide(
        item_id=item_id,
        action=action,
        actor=Actor(surface="web", user_id="lead", name="lead"),
        content=content,
        reason_code=reason_code,
        reason_text=reason_text,
    )


@dataclass
class InProcess:
    system: System
    api_key: str
    secret: str
    app: FastAPI
    polls: Polls
    client: AsyncSignoff

    def decide(self, action: str, **kw: Any) -> asyncio.Task[ItemPublic]:
        return asyncio.create_task(decide_when_polled(self.system, self.polls, action, **kw))

    def other_client(self, api_key: str, **kw: Any) -> AsyncSignoff:
        transport = httpx.ASGITransport(app=self.app)
        return AsyncSignoff("http://signoff", api_key, transport=transport, **kw)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcess]:
    system, api_key, secret = await start_system(tmp_path / "signoff.db")
    app = app_of(system)
    polls = Polls(system)
    client = AsyncSignoff(
        "http://signoff", api_key, transport=httpx.ASGITransport(app=app), poll_seconds=1
    )
    try:
        yield InProcess(system, api_key, secret, app, polls, client)
    finally:
        await client.aclose()
        await system.close()


class LiveServer:
    """The app under uvicorn on a free port, with its own event loop in a thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        try:
            self.system, self.api_key, self.secret = await start_system(self.db_path)
            self.polls = Polls(self.system)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)  # connections queue here until uvicorn accepts them
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            config = uvicorn.Config(
                app_of(self.system), lifespan="off", log_level="warning", access_log=False
            )
            self.server = uvicorn.Server(config)
            self.loop = asyncio.get_running_loop()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ready.set()
        try:
            await self.server.serve(sockets=[sock])
        finally:
            await self.system.close()

    def start(self) -> LiveServer:
        self.thread.start()
        if not self.ready.wait(timeout=60) or self.error is not None:
            raise RuntimeError(f"the server did not start: {self.error!r}")
        return self

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result(timeout=30)

    def decide(self, action: str, **kw: Any) -> concurrent.futures.Future[ItemPublic]:
        return self.submit(decide_when_polled(self.system, self.polls, action, **kw))

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("live") / "signoff.db").start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def live(server: LiveServer) -> LiveServer:
    """The module's server, with no long polls left over from an earlier test."""

    async def reset() -> None:
        server.polls.reset()

    server.run(reset())
    return server
