"""A live signoff on 127.0.0.1 (uvicorn in the test's event loop) and headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, or ``SIGNOFF_TEST_CHROMIUM``), driven by
Playwright's Python package; no browser is downloaded. In CI a missing browser fails
the run; elsewhere the browser tests skip, saying why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import yaml

from bot.app import System, build, create_app
from bot.auth import Integrator
from bot.clock import SystemClock
from bot.routes import parse_routes
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.conftest import IN_CI
from tests.fakes.receiver import Receiver
from tests.process import free_port

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = os.environ.get("SIGNOFF_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not path:
        message = "Chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + "; CI must run the browser tests", pytrace=False)
        pytest.skip(message + "; browser tests skipped outside CI")
    return path


@dataclass
class Live:
    system: System
    base: str
    receiver: Receiver
    integrator: Integrator
    link: str  # a fresh sign-in link for reviewer "rita" (routes support, code)
    env: dict[str, str]  # settings for a `signoff` command on the same database and routes

    async def new_link(
        self, name: str = "rita", routes: tuple[str, ...] = ("support", "code")
    ) -> str:
        return await self.system.web.auth.invite(name=name, routes=list(routes))


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    receiver = await Receiver().start()
    port = free_port()
    hook = {"type": "webhook", "url": f"{receiver.url}/release"}
    doc = {
        "routes": {
            "support": {
                "reject_reasons": ["wrong facts", "wrong tone"],
                "target": hook,
                "callback_hosts": ["127.0.0.1"],
                "allow_private_callbacks": True,
            },
            "code": {
                "reject_reasons": ["breaks tests"],
                "target": hook,
                "callback_hosts": ["127.0.0.1"],
                "allow_private_callbacks": True,
            },
            "secret": {},
        }
    }
    routes = parse_routes(doc)
    (tmp_path / "signoff.yaml").write_text(yaml.safe_dump(doc))
    settings = load_settings(
        {
            "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
            "SIGNOFF_PORT": str(port),
        }
    )
    system = build(settings, clock=SystemClock(), routes=routes)
    await upgrade(system.engine)
    key = await system.keys.create(name="agent")
    integrator = await system.keys.authenticate(key.api_key)
    assert integrator is not None
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(system, migrate=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)  # waiting for the socket to listen, not a timer under test
    live = Live(
        system,
        settings.base_url,
        receiver,
        integrator,
        "",
        {
            "SIGNOFF_DATABASE_URL": settings.database_url,
            "SIGNOFF_CONFIG": str(tmp_path / "signoff.yaml"),
        },
    )
    live.link = await live.new_link()
    try:
        yield live
    finally:
        system.broadcaster.close()
        server.should_exit = True
        await task
        await receiver.stop()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            await b.close()
