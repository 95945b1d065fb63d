"""The real discord.py bot under SimCord's in-process Discord, wired to a real signoff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.bot import DiscordReviews, DiscordSurface, SignoffBot
from bot.app import System, build
from bot.auth import Integrator
from bot.digest import Digest
from bot.reader import InboxReader
from bot.routes import parse_routes
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface


@pytest.fixture
def simcord_bot() -> SignoffBot:
    return SignoffBot()


@dataclass
class DiscordWorld:
    env: Any
    bot: SignoffBot
    system: System
    integrator: Integrator
    receiver: Receiver
    channel: Any
    lead: Any
    intern: Any
    tmp: Path
    rita: Any  # has the reviewers role

    def wire(self, bot: SignoffBot) -> None:
        """Give a (new) bot the review handler, as the composition root does."""
        bot.reviews = DiscordReviews(
            service=self.system.service,
            reader=self.system.reader,
            routes=self.system.routes,
            web_url="http://127.0.0.1:8000",
            retry=self.system.retry,
            queue=self.system.queue,
            digest=Digest(
                inbox=InboxReader(sessions=self.system.sessions, routes=self.system.routes),
                routes=self.system.routes,
                clock=self.system.clock,
            ),
        )


@pytest.fixture
async def world(simcord_env: Any, tmp_path: Path) -> AsyncIterator[DiscordWorld]:
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("code-review")
    lead = guild.add_member(simcord_env.create_user("lead"))
    intern = guild.add_member(simcord_env.create_user("intern"))
    reviewers = guild.create_role("reviewers")
    rita = guild.add_member(simcord_env.create_user("rita"), roles=[reviewers])
    receiver = await Receiver().start()
    routes = parse_routes(
        {
            "routes": {
                "code": {
                    "surfaces": [{"type": "discord", "channel": str(channel.id)}],
                    "reviewers": {"discord": [str(lead.id), str(reviewers.id)]},
                    "reject_reasons": ["breaks tests"],
                    "target": {"type": "webhook", "url": f"{receiver.url}/release"},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                }
            }
        }
    )
    bot: SignoffBot = simcord_env.bot
    system = build(
        load_settings({"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db"}),
        routes=routes,
        surfaces={
            "discord": DiscordSurface(client=bot, web_url="http://127.0.0.1:8000"),
            "web": RecordingSurface(),
        },
    )
    await upgrade(system.engine)
    key = await system.keys.create(name="agent")
    integrator = await system.keys.authenticate(key.api_key)
    assert integrator is not None
    world = DiscordWorld(
        simcord_env, bot, system, integrator, receiver, channel, lead, intern, tmp_path, rita
    )
    world.wire(bot)
    try:
        yield world
    finally:
        await system.close()
        await receiver.stop()
