"""signoff served over real HTTP for the published ``humanlayer`` SDK (pinned in the
``dev`` extra), wired to the Slack emulator.

Everything runs on the test's event loop: the Slack emulator, uvicorn serving the app on
a free port, and the test itself; the SDK, which is synchronous (``requests``), runs in a
worker thread (``asyncio.to_thread``) while the test clicks and answers. The SDK reads
``HUMANLAYER_API_BASE`` and ``HUMANLAYER_API_KEY`` from the environment, as in real use;
its polling pause (3 s, ``HumanLayer.sleep``) is shortened through the SDK's own
parameter, and the pauses it asked for are recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from humanlayer import HumanLayer
from slack_sdk.signature import SignatureVerifier

from bot.app import System, build, create_app
from bot.auth import Integrator
from bot.routes import parse_routes
from bot.schemas import ItemPublic
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.slack import SlackEmulator
from tests.process import free_port
from tests.slack.conftest import CHANNEL, SECRET, button_click, eventually, view_submission

ONCALL = "C0ONCALL"

ROUTES: dict[str, Any] = {
    "routes": {
        "humanlayer": {
            "surfaces": [{"type": "slack", "channel": CHANNEL}, {"type": "web"}],
            "reviewers": {"slack": ["U0LEAD"]},
            "reject_reasons": ["too risky"],
            "escalation": [
                {"after": "4h", "do": "escalate", "channel": ONCALL, "mention": {"slack": ["U0ON"]}}
            ],
        },
        "ops": {"surfaces": [{"type": "web"}], "allow_self_approval": True},
    }
}


@dataclass
class World:
    system: System
    slack: SlackEmulator
    base: str  # http://127.0.0.1:PORT, served by uvicorn
    http: httpx.AsyncClient  # to ``base``, with a cookie jar
    api_key: str
    integrator: Integrator
    sleeps: list[float] = field(default_factory=list)  # pauses the SDK asked for

    def sdk(self, **kw: Any) -> HumanLayer:
        """A HumanLayer client configured from the environment, as an agent makes it."""

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            time.sleep(0.02)

        return HumanLayer(sleep=sleep, **kw)

    async def click(self, verb: str, item_id: str, *, user: str = "U0LEAD") -> httpx.Response:
        """A signed Approve / Edit / Reject button click from Slack on the item's card."""
        [ts] = [m["ts"] for m in self.slack.messages[CHANNEL] if item_id in str(m["blocks"])]
        payload = button_click(
            item_id=item_id, verb=verb, user=user, ts=ts, trigger_id=self.slack.new_trigger_id()
        )
        return await self.signed(payload)

    async def submit_modal(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str = "U0LEAD"
    ) -> httpx.Response:
        return await self.signed(view_submission(view, user=user, values=values))

    async def signed(self, payload: dict[str, Any]) -> httpx.Response:
        """POST an interaction to /slack/events as Slack does: form-encoded, signed."""
        body = urlencode({"payload": json.dumps(payload)})
        stamp = str(int(time.time()))
        signature = SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body)
        return await self.http.post(
            "/slack/events",
            content=body,
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-slack-request-timestamp": stamp,
                "x-slack-signature": signature,
            },
        )

    async def pending(self, kind: str) -> ItemPublic:
        """The one pending item of ``kind``, once the SDK has asked for it."""

        async def find() -> ItemPublic | None:
            page = await self.system.reader.page(integrator_id=self.integrator.id, state="pending")
            found = [i for i in page.items if i.kind == kind]
            return found[0] if len(found) == 1 else None

        item: ItemPublic = await eventually(find, within=10)
        return item

    async def sign_in(self, name: str, routes: list[str]) -> str:
        """Sign ``self.http`` in as web reviewer ``name``; the page's CSRF token."""
        link = await self.system.web.auth.invite(name=name, routes=routes)
        answer = await self.http.post(link.split(self.base, 1)[1])
        assert answer.status_code == 303, answer.text
        page = await self.http.get("/")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match
        return match.group(1)


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async with SlackEmulator() as slack:
        port = free_port()
        settings = load_settings(
            {
                "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
                "SIGNOFF_PORT": str(port),
                "SIGNOFF_SLACK_BOT_TOKEN": "xoxb-test",
                "SIGNOFF_SLACK_SIGNING_SECRET": SECRET,
                "SIGNOFF_SLACK_API_URL": slack.url,
            }
        )
        system = build(settings, routes=parse_routes(ROUTES))
        await upgrade(system.engine)
        key = await system.keys.create(name="agent")
        integrator = await system.keys.authenticate(key.api_key)
        assert integrator is not None
        app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)  # waiting for the socket to listen
        base = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("HUMANLAYER_API_BASE", f"{base}/humanlayer/v1")
        monkeypatch.setenv("HUMANLAYER_API_KEY", key.api_key)
        monkeypatch.delenv("HUMANLAYER_RUN_ID", raising=False)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            try:
                yield World(system, slack, base, http, key.api_key, integrator)
            finally:
                server.should_exit = True
                await task
                await system.close()
