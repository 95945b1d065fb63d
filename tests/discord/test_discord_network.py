"""The real network path: discord.py over REST and the gateway to a loopback fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import discord.gateway
import discord.http
import pytest

from bot.app import build
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.discord import DiscordFake

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


@pytest.fixture
def restore_discord_urls() -> Iterator[None]:
    """DiscordEdge points discord.py at the fake through class attributes: put them back."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


async def test_card_over_rest_and_a_click_over_the_gateway(
    tmp_path: Path, restore_discord_urls: None
) -> None:
    async with DiscordFake(token="token") as fake:
        lead_id = next(uid for uid, m in fake.members.items() if m["username"] == "lead")
        routes = parse_routes(
            {
                "routes": {
                    "code": {
                        "surfaces": [{"type": "discord", "channel": str(fake.channel_id)}],
                        "reviewers": {"discord": [str(lead_id)]},
                    }
                }
            }
        )
        system = build(
            load_settings(
                {
                    "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
                    "SIGNOFF_DISCORD_TOKEN": "token",
                    "SIGNOFF_DISCORD_API_URL": fake.rest_url,
                    "SIGNOFF_DISCORD_GATEWAY_URL": fake.gateway_url,
                }
            ),
            routes=routes,
        )
        assert system.discord is not None
        await upgrade(system.engine)
        key = await system.keys.create(name="agent")
        integrator = await system.keys.authenticate(key.api_key)
        assert integrator is not None
        try:
            await system.discord.start()
            await fake.wait_ready()
            fake.rate_limit(method="POST", path_contains="/messages", times=1, retry_after=0.05)
            data = ItemCreate(
                route="code",
                kind="code_change",
                title="Bump a",
                confidence=0.5,
                content={
                    "repository": "o/r",
                    "title": "Bump a",
                    "diff": DIFF,
                    "description": "@everyone look, <@&1> too",
                },
            )
            item = (await system.service.submit(integrator=integrator, data=data)).item

            posts = fake.requests_to("POST", "/messages")
            assert [p.status for p in posts] == [429, 200]  # waited out, posted once
            assert len(fake.messages_in()) == 1
            assert posts[-1].json is not None
            assert posts[-1].json["allowed_mentions"] == {"parse": []}
            [message] = fake.messages_in()

            click = fake.button_interaction(
                custom_id=f"signoff:approve:{item.id}",
                user_id=lead_id,
                message_id=int(message["id"]),
            )
            await fake.send_interaction(click)
            callback = await fake.wait_for_callback(int(click["id"]), within=3.0)
            assert callback.latency < 3.0
            deadline = time.monotonic() + 5
            while (await system.reader.get(item_id=item.id)).state == "pending":
                assert time.monotonic() < deadline, "the click did not decide the item"
                await asyncio.sleep(0.01)  # another task (the gateway) does the work
            decided = await system.reader.get(item_id=item.id)
            assert decided.outcome == "approved"
            assert decided.decisions[-1].actor_id == str(lead_id)
            deadline = time.monotonic() + 5
            while not fake.requests_to("PATCH", f"/messages/{message['id']}"):
                assert time.monotonic() < deadline, "the card was not edited"
                await asyncio.sleep(0.01)
            edits = fake.requests_to("PATCH", f"/messages/{message['id']}")
            assert edits[-1].status == 200  # the card was edited in place
        finally:
            await system.discord.stop()
            await system.close()
        assert fake.unhandled == []
