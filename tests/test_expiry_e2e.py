"""Expiry end to end: the real Slack and Discord clients against their emulators, an
injected clock, and the integrator's signed callback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import discord.gateway
import discord.http
import pytest

from bot.app import build
from bot.clock import FrozenClock
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.secrets import verify
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.discord import DiscordFake
from tests.fakes.receiver import Receiver
from tests.fakes.slack import SlackEmulator

STATUS = "Expired after 24 h — rejected by policy"


@pytest.fixture
def restore_discord_urls() -> Iterator[None]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def test_expiry_updates_the_cards_on_slack_and_discord_and_calls_back_expired(
    tmp_path: Path, receiver: Receiver, restore_discord_urls: None
) -> None:
    clock = FrozenClock()
    async with SlackEmulator() as slack, DiscordFake(token="token") as fake:
        routes = parse_routes(
            {
                "routes": {
                    "support": {
                        "surfaces": [
                            {"type": "slack", "channel": "C0SUPPORT"},
                            {"type": "discord", "channel": str(fake.channel_id)},
                        ],
                        "callback_hosts": ["127.0.0.1"],
                        "allow_private_callbacks": True,
                        "escalation": [{"after": "24h", "do": "expire", "on_expire": "reject"}],
                    }
                }
            }
        )
        system = build(
            load_settings(
                {
                    "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
                    "SIGNOFF_SLACK_BOT_TOKEN": "xoxb-test",
                    "SIGNOFF_SLACK_SIGNING_SECRET": "secret",
                    "SIGNOFF_SLACK_API_URL": slack.url,
                    "SIGNOFF_DISCORD_TOKEN": "token",
                    "SIGNOFF_DISCORD_API_URL": fake.rest_url,
                    "SIGNOFF_DISCORD_GATEWAY_URL": fake.gateway_url,
                }
            ),
            clock=clock,
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
            data = ItemCreate(
                route="support",
                kind="message",
                title="Reply to T-1",
                content={"text": "Thanks for waiting"},
                callback_url=f"{receiver.url}/hook",
            )
            item = (await system.service.submit(integrator=integrator, data=data)).item
            [slack_card] = slack.messages["C0SUPPORT"]
            [discord_card] = fake.messages_in()

            clock.advance(timedelta(hours=23, minutes=59))
            assert (await system.sweeper.run_once()).expired == 0
            clock.advance(timedelta(minutes=1))
            assert (await system.sweeper.run_once()).expired == 1

            # Slack: the card updated in place, no buttons left, the status on it
            slack_update = slack.message("C0SUPPORT", slack_card["ts"])
            assert slack_update is not None
            rendered = json.dumps(slack_update["blocks"], ensure_ascii=False)
            assert STATUS in rendered and '"actions"' not in rendered
            # Discord: the embed edited in place, the buttons disabled
            [edit] = fake.requests_to("PATCH", f"/messages/{discord_card['id']}")
            assert edit.json is not None
            assert STATUS in json.dumps(edit.json, ensure_ascii=False)
            buttons = [b for row in edit.json["components"] for b in row["components"]]
            assert buttons and all(b["disabled"] for b in buttons)  # shown, not clickable

            await system.worker.run_once()
            [callback] = receiver.accepted()
            body = json.loads(callback.body)
            assert (body["item"]["state"], body["item"]["outcome"]) == ("expired", "expired")
            assert verify(
                secret=key.signing_secret,
                header=callback.headers["Signoff-Signature"],
                body=callback.body,
                now=int(time.time()),
            )
            assert item.id == body["item"]["id"]
        finally:
            await system.discord.stop()
            await system.close()
        assert fake.unhandled == []
