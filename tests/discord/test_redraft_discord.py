"""Reject and redraft on Discord: the persistent button, the reason modal (also across a
restart), revision 2 edited into the same message. The real discord.py bot in SimCord,
the real OpenAI client against the loopback OpenAI fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.bot import DiscordSurface, SignoffBot
from bot.app import build
from bot.ports import Actor
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.discord.conftest import DiscordWorld
from tests.drafted import (
    FIRST,
    PRICES,
    SECOND,
    drafted_item,
    drafting_route,
    openai_env,
    redrafted,
    said_to_model,
)
from tests.fakes.openai import OpenAIFake
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake() as fake:
        yield fake


@pytest.fixture
async def world(simcord_env: Any, tmp_path: Path, fake: OpenAIFake) -> AsyncIterator[DiscordWorld]:
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("support")
    lead = guild.add_member(simcord_env.create_user("lead"))
    intern = guild.add_member(simcord_env.create_user("intern"))
    receiver = await Receiver().start()
    common = {
        "surfaces": [{"type": "discord", "channel": str(channel.id)}],
        "reviewers": {"discord": [str(lead.id)]},
        "target": {"type": "webhook", "url": f"{receiver.url}/release"},
        "callback_hosts": ["127.0.0.1"],
        "allow_private_callbacks": True,
    }
    routes = parse_routes(
        {
            "prices": PRICES,
            "routes": {
                "support": drafting_route(**common),
                "brief": drafting_route(**common, llm={"max_revisions": 2}),
                "plain": common,
            },
        }
    )
    bot: SignoffBot = simcord_env.bot
    system = build(
        load_settings(
            {
                "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
                **openai_env(fake),
            }
        ),
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
        simcord_env, bot, system, integrator, receiver, channel, lead, intern, tmp_path, lead
    )
    world.wire(bot)
    try:
        yield world
    finally:
        await system.close()
        await receiver.stop()


def button_ids(message: Any) -> dict[str, str]:
    """custom id → label of the message's buttons."""
    return {c.custom_id: c.label for row in message.components for c in row.children}


def card(world: DiscordWorld, message_id: int) -> Any:
    """The message ``message_id`` as it is now."""
    return next(m for m in world.channel.history() if m.id == message_id)


async def test_reject_and_redraft_edits_revision_2_into_the_same_message(
    world: DiscordWorld, fake: OpenAIFake
) -> None:
    fake.answer(FIRST).answer(SECOND)
    item_id = await drafted_item(world.system, world.integrator, route="support")
    await world.env.settle()
    message = world.channel.last_message
    redraft = f"signoff:redraft:{item_id}"
    assert button_ids(message)[redraft] == "Reject and redraft"

    shown = await world.lead.click(message, custom_id=redraft)
    assert shown.modal is not None and shown.modal["title"] == "Reject and redraft"
    assert shown.modal["custom_id"].startswith(f"signoff-redraft:{item_id}:")
    assert len(shown.modal["custom_id"]) <= 100
    assert "What should the next draft do differently?" in json.dumps(shown.modal)
    # no reason: refused, told to the clicker alone; nothing decided, nothing drafted
    refused = await world.lead.submit_modal(shown, {})
    [told] = refused.followups
    assert told.ephemeral and "needs a reason" in told.content
    item = await world.system.reader.get(item_id=item_id)
    assert item.decisions == [] and not item.redrafting and len(fake.requests) == 1

    shown = await world.lead.click(message, custom_id=redraft)
    fresh = SignoffBot()  # a restart between opening the form and submitting it
    world.wire(fresh)
    await world.env.restart_bot(fresh)
    reason = "warmer, and say sorry for the wait"
    await world.lead.submit_modal(shown, {"reason_code": "wrong tone", "reason_text": reason})
    await redrafted(world.system)
    await world.env.settle()

    said = said_to_model(fake, 1)
    assert reason in said and "wrong tone" in said and "refunded order 1234 in full" in said
    edited = card(world, message.id)  # the same message, edited in place
    assert len([m for m in world.channel.history() if m.embeds]) == 1
    embed = edited.embeds[0]
    assert {f.name: f.value for f in embed.fields}["Revision"] == "2 of 3"
    assert "so sorry for the wait" in (embed.description or "")
    assert f"Revision 1, rejected by lead: wrong tone: {reason}" in (embed.description or "")
    assert redraft in button_ids(edited)  # 2 of 3: one more is allowed

    await world.lead.click(edited, custom_id=f"signoff:approve:{item_id}")
    approved = await world.system.reader.get(item_id=item_id)
    assert approved.state == "approved" and approved.revision == 2
    assert approved.content["body"] == SECOND["body"]
    await world.system.worker.run_once()
    [release] = world.receiver.accepted()
    assert json.loads(release.body)["item"]["final_content"]["body"] == SECOND["body"]


async def test_no_redraft_button_at_the_last_revision_or_where_the_route_allows_none(
    world: DiscordWorld, fake: OpenAIFake
) -> None:
    fake.answer(FIRST).answer(SECOND).answer(FIRST)
    item_id = await drafted_item(world.system, world.integrator, route="brief")
    await world.env.settle()
    message = world.channel.last_message
    await world.system.service.decide(
        item_id=item_id,
        action="redraft",
        actor=Actor(surface="web", user_id="ann", name="ann"),
        reason_text="warmer",
    )
    await redrafted(world.system)
    await world.env.settle()
    last = card(world, message.id)
    assert {f.name: f.value for f in last.embeds[0].fields}["Revision"] == "2 of 2"
    assert set(button_ids(last)) == {
        f"signoff:{v}:{item_id}" for v in ("approve", "edit", "reject")
    }

    plain_task = await drafted_item(world.system, world.integrator, route="plain")
    submitted = await world.system.service.submit(
        integrator=world.integrator,
        data=ItemCreate(
            route="support",
            kind="email",
            title="Not drafted",
            content={k: v for k, v in FIRST.items() if v is not None},
        ),
    )
    await world.env.settle()
    for item in (plain_task, submitted.item.id):
        posted = next(
            m for m in world.channel.history() if f"signoff:reject:{item}" in button_ids(m)
        )
        assert f"signoff:redraft:{item}" not in button_ids(posted)
