"""A signoff wired to the Slack emulator, the real slack-bolt app and real signatures."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.app import System, build, create_app
from bot.auth import Integrator
from bot.routes import parse_routes
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.receiver import Receiver
from tests.fakes.slack import SlackEmulator

SECRET = "test-signing-secret"
CHANNEL = "C0SUPPORT"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slack"  # from shared/

for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(var, None)


def routes_doc(receiver_url: str) -> dict[str, Any]:
    hook = {"type": "webhook", "url": f"{receiver_url}/release"}
    return {
        "routes": {
            "support": {
                "surfaces": [{"type": "slack", "channel": CHANNEL}, {"type": "web"}],
                "reviewers": {"slack": ["U0LEAD", "S0AGENTS"]},
                "reject_reasons": ["wrong facts", "wrong tone"],
                "target": hook,
                "callback_hosts": ["127.0.0.1"],
                "allow_private_callbacks": True,
            },
        }
    }


@dataclass
class SlackWorld:
    system: System
    slack: SlackEmulator
    receiver: Receiver
    integrator: Integrator
    http: httpx.AsyncClient
    db_url: str
    settings_env: dict[str, str]

    async def click(
        self, payload: dict[str, Any], *, secret: str = SECRET, age: float = 0
    ) -> httpx.Response:
        """POST an interaction to /slack/events as Slack does: form-encoded, signed."""
        return await self.signed(
            urlencode({"payload": json.dumps(payload)}), secret=secret, age=age
        )

    async def command(self, text: str, *, user: str, channel: str = CHANNEL) -> httpx.Response:
        """A /signoff slash command as Slack sends it."""
        return await self.signed(
            urlencode(
                {
                    "command": "/signoff",
                    "text": text,
                    "user_id": user,
                    "user_name": user.lower(),
                    "channel_id": channel,
                    "team_id": "T0TEAM",
                    "trigger_id": "1.2.3",
                    "response_url": "http://127.0.0.1:9/unused",
                    "api_app_id": "A0APP",
                }
            )
        )

    async def signed(self, body: str, *, secret: str = SECRET, age: float = 0) -> httpx.Response:
        timestamp = str(int(time.time() - age))
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        return await self.http.post(
            "/slack/events",
            content=body,
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-slack-request-timestamp": timestamp,
                "x-slack-signature": signature,
            },
        )


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def button_click(*, item_id: str, verb: str, user: str, ts: str, trigger_id: str) -> dict[str, Any]:
    """A real block_actions payload (shared fixture) with our ids swapped in."""
    payload = fixture("block_actions_button_click.json")
    payload["user"] = {"id": user, "username": user.lower(), "name": user.lower()}
    payload["trigger_id"] = trigger_id
    payload["channel"] = {"id": CHANNEL}
    payload["container"].update(channel_id=CHANNEL, message_ts=ts)
    payload["message"]["ts"] = ts
    payload["actions"] = [
        {
            "action_id": f"signoff:{verb}:{item_id}",
            "block_id": f"signoff-actions:{item_id}",
            "text": {"type": "plain_text", "text": verb},
            "value": item_id,
            "type": "button",
            "action_ts": ts,
        }
    ]
    return payload


def view_submission(
    view: dict[str, Any], *, user: str, values: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A real view_submission payload (shared fixture) for the modal we opened."""
    payload = fixture("view_submission_modal.json")
    payload["user"] = {"id": user, "username": user.lower(), "name": user.lower()}
    payload["view"].update(
        id=view.get("id", "V1"),
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        blocks=view["blocks"],
        state={"values": values},
    )
    return payload


async def eventually(check: Callable[[], Any], *, within: float = 5.0) -> Any:
    """Poll until ``check()`` is truthy: bolt runs listeners after it has acked."""
    import asyncio

    deadline = time.monotonic() + within
    while True:
        result = check()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SlackWorld]:
    async with SlackEmulator() as slack:
        slack.usergroups = {"S0AGENTS": ["U0AGENT1", "U0AGENT2"]}
        receiver = await Receiver().start()
        db_url = f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
        env = {
            "SIGNOFF_DATABASE_URL": db_url,
            "SIGNOFF_SLACK_BOT_TOKEN": "xoxb-test",
            "SIGNOFF_SLACK_SIGNING_SECRET": SECRET,
            "SIGNOFF_SLACK_API_URL": slack.url,
        }
        system = build(load_settings(env), routes=parse_routes(routes_doc(receiver.url)))
        await upgrade(system.engine)
        key = await system.keys.create(name="agent")
        integrator = await system.keys.authenticate(key.api_key)
        assert integrator is not None
        app = create_app(system, migrate=False, run_worker=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as http:
            try:
                yield SlackWorld(system, slack, receiver, integrator, http, db_url, env)
            finally:
                await system.close()
                await receiver.stop()
