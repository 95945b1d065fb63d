"""Reject and redraft on Slack: the button, the reason modal, revision 2 on the same
message. Real slack-bolt and signatures, the Slack emulator, the real OpenAI client
against the loopback OpenAI fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import build, create_app
from bot.ports import Actor
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
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
from tests.fakes.slack import SlackEmulator
from tests.slack.conftest import (
    CHANNEL,
    SECRET,
    SlackWorld,
    button_click,
    eventually,
    view_submission,
)

LEAD = "U0LEAD"


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake() as fake:
        yield fake


@pytest.fixture
async def world(tmp_path: Path, fake: OpenAIFake) -> AsyncIterator[SlackWorld]:
    async with SlackEmulator() as slack:
        receiver = await Receiver().start()
        common = {
            "surfaces": [{"type": "slack", "channel": CHANNEL}, {"type": "web"}],
            "reviewers": {"slack": [LEAD]},
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
        db_url = f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
        env = {
            "SIGNOFF_DATABASE_URL": db_url,
            "SIGNOFF_SLACK_BOT_TOKEN": "xoxb-test",
            "SIGNOFF_SLACK_SIGNING_SECRET": SECRET,
            "SIGNOFF_SLACK_API_URL": slack.url,
            **openai_env(fake),
        }
        system = build(load_settings(env), routes=routes)
        await upgrade(system.engine)
        key = await system.keys.create(name="agent")
        integrator = await system.keys.authenticate(key.api_key)
        assert integrator is not None
        app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as http:
            try:
                yield SlackWorld(system, slack, receiver, integrator, http, db_url, env)
            finally:
                await system.close()
                await receiver.stop()


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """The card's action buttons: action_id → text."""
    return {
        e["action_id"]: e["text"]["text"]
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


async def settled_updates(world: SlackWorld) -> list[Any]:
    assert world.system.slack is not None
    await world.system.slack.surface.drain()
    return world.slack.calls_to("chat.update")


async def test_reject_and_redraft_posts_revision_2_on_the_same_message(
    world: SlackWorld, fake: OpenAIFake
) -> None:
    fake.answer(FIRST).answer(SECOND)
    item_id = await drafted_item(world.system, world.integrator, route="support")
    [message] = world.slack.messages[CHANNEL]
    ts = message["ts"]
    assert buttons(message)[f"signoff:redraft:{item_id}"] == "Reject and redraft"

    await world.click(
        button_click(
            item_id=item_id,
            verb="redraft",
            user=LEAD,
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    assert view["callback_id"] == "signoff:redraft"
    assert view["title"]["text"] == "Reject and redraft"
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    options = inputs["reason_code"]["element"]["options"]
    assert [o["value"] for o in options] == ["wrong facts", "wrong tone"]
    assert inputs["reason_text"]["label"]["text"] == "What should the next draft do differently?"

    # no reason: refused in the modal, which stays open; nothing was decided or drafted
    empty = await world.click(view_submission(view, user=LEAD, values={}))
    assert empty.json()["response_action"] == "errors"
    assert "reason_text" in empty.json()["errors"]
    item = await world.system.reader.get(item_id=item_id)
    assert item.decisions == [] and not item.redrafting and len(fake.requests) == 1

    reason = "warmer, and say sorry for the wait"
    done = await world.click(
        view_submission(
            view,
            user=LEAD,
            values={
                "reason_code": {
                    "value": {"type": "static_select", "selected_option": {"value": "wrong tone"}}
                },
                "reason_text": {"value": {"type": "plain_text_input", "value": reason}},
            },
        )
    )
    assert done.status_code == 200 and not done.content  # a plain ack closes the modal
    # decided after the ack; the redraft starts once the decision is committed
    await eventually(lambda: _revision(world, item_id, 2), within=10)
    await redrafted(world.system)

    said = said_to_model(fake, 1)
    assert reason in said and "wrong tone" in said and "refunded order 1234 in full" in said
    updates = await settled_updates(world)
    assert updates and all(u.params["ts"] == ts for u in updates)  # the same message
    assert len(world.slack.messages[CHANNEL]) == 1  # nothing new posted
    holding = [json.dumps(u.params["blocks"]) for u in updates]
    assert any("drafting revision 2" in b and "signoff:approve" not in b for b in holding)
    card = world.slack.message(CHANNEL, ts)
    assert card is not None
    blocks = json.dumps(card["blocks"])
    assert "revision 2 of 3" in blocks and "so sorry for the wait" in blocks
    assert f"Revision 1, rejected by {LEAD.lower()}: wrong tone: {reason}" in blocks
    assert f"signoff:redraft:{item_id}" in buttons(card)  # 2 of 3: one more is allowed

    await world.click(
        button_click(
            item_id=item_id,
            verb="approve",
            user=LEAD,
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    approved = await eventually(lambda: _approved(world, item_id))
    assert approved.revision == 2 and approved.content["body"] == SECOND["body"]
    # the card is refreshed after the decision is stored: wait for the update, not the row
    card = await eventually(lambda: _card_saying(world, ts, "Approved by u0lead"))
    assert card is not None and "Approved by u0lead" in json.dumps(card["blocks"])
    await world.system.worker.run_once()
    [release] = world.receiver.accepted()
    assert json.loads(release.body)["item"]["final_content"]["body"] == SECOND["body"]


async def test_no_redraft_button_at_the_last_revision_or_where_the_route_allows_none(
    world: SlackWorld, fake: OpenAIFake
) -> None:
    fake.answer(FIRST).answer(SECOND).answer(FIRST)
    item_id = await drafted_item(world.system, world.integrator, route="brief")
    [message] = world.slack.messages[CHANNEL]
    assert f"signoff:redraft:{item_id}" in buttons(message)
    await world.system.service.decide(
        item_id=item_id,
        action="redraft",
        actor=Actor(surface="web", user_id="ann", name="ann"),
        reason_text="warmer",
    )
    await redrafted(world.system)
    await settled_updates(world)
    last = world.slack.message(CHANNEL, message["ts"])
    assert last is not None and "revision 2 of 2" in json.dumps(last["blocks"])
    assert set(buttons(last)) == {f"signoff:{v}:{item_id}" for v in ("approve", "edit", "reject")}

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
    for item in (plain_task, submitted.item.id):
        posted = next(
            m for m in world.slack.messages[CHANNEL] if any(item in a for a in buttons(m))
        )
        assert f"signoff:reject:{item}" in buttons(posted)
        assert f"signoff:redraft:{item}" not in buttons(posted)


async def _revision(world: SlackWorld, item_id: str, number: int) -> bool:
    item = await world.system.reader.get(item_id=item_id)
    return item.revision == number and not item.redrafting


async def _approved(world: SlackWorld, item_id: str) -> Any:
    item = await world.system.reader.get(item_id=item_id)
    return item if item.state == "approved" else None


def _card_saying(world: SlackWorld, ts: str, text: str) -> Any:
    card = world.slack.message(CHANNEL, ts)
    return card if card is not None and text in json.dumps(card["blocks"]) else None
