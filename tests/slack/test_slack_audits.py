"""Blind audit cards on Slack: real slack-bolt, real signatures, the Slack emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import build, create_app
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage import audits as audit_store
from storage.migrate import upgrade
from storage.models import Audit
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

AUDITS = "C0AUDITS"
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, refunded."}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SlackWorld]:
    routes = {
        "routes": {
            "support": {
                "surfaces": [{"type": "slack", "channel": CHANNEL}],
                "reviewers": {"slack": ["U0LEAD", "S0AGENTS"]},
                "thresholds": {"auto_approve_at": 0.9},
                "audit": {"rate": 1.0, "surface": "slack", "channel": AUDITS},
            }
        }
    }
    async with SlackEmulator() as slack:
        slack.usergroups = {"S0AGENTS": ["U0AGENT1"]}
        receiver = await Receiver().start()
        db_url = f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
        env = {
            "SIGNOFF_DATABASE_URL": db_url,
            "SIGNOFF_SLACK_BOT_TOKEN": "xoxb-test",
            "SIGNOFF_SLACK_SIGNING_SECRET": SECRET,
            "SIGNOFF_SLACK_API_URL": slack.url,
        }
        system = build(load_settings(env), routes=parse_routes(routes))
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


async def auto_approved(world: SlackWorld) -> tuple[int, str]:
    """Submit a draft the policy approves; the audit's id and its card's ts."""
    data = ItemCreate(
        route="support", kind="email", title="Refund for order 1234", content=EMAIL, confidence=0.97
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    assert item.outcome == "auto_approved"
    async with world.system.sessions() as session:
        opened = await audit_store.open_audits(session, routes=["support"])
    audit_id = opened[-1].audit.id
    assert audit_id is not None
    return audit_id, world.slack.messages[AUDITS][-1]["ts"]


async def answer(world: SlackWorld, audit_id: int) -> Audit:
    async with world.system.sessions() as session:
        audit = await audit_store.get_audit(session, audit_id=audit_id)
    assert audit is not None
    return audit


async def test_the_card_is_blind_and_correct_records_it_once(world: SlackWorld) -> None:
    audit_id, ts = await auto_approved(world)
    assert CHANNEL not in world.slack.messages  # no review card: the policy decided
    [card] = world.slack.messages[AUDITS]
    shown = json.dumps(card["blocks"]).lower() + card["text"].lower()
    assert "approv" not in shown and "auto" not in shown and "reject" not in shown
    assert "confidence 0.97" in shown and "hi jane, refunded." in shown
    buttons = card["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == [
        f"signoff:audit-{verb}:{audit_id}" for verb in ("correct", "wrong", "fix")
    ]
    assert [b["text"]["text"] for b in buttons] == ["Correct", "Wrong", "Wrong: fix it"]

    click = button_click(
        item_id=str(audit_id),
        verb="audit-correct",
        user="U0LEAD",
        ts=ts,
        trigger_id=world.slack.new_trigger_id(),
    )
    click["channel"] = {"id": AUDITS}
    assert (await world.click(click)).status_code == 200
    await eventually(lambda: _answered(world, audit_id))
    audit = await answer(world, audit_id)
    assert (audit.verdict, audit.surface, audit.actor_id) == ("correct", "slack", "U0LEAD")
    [update] = await eventually(lambda: world.slack.calls_to("chat.update"))
    blocks = json.dumps(update.params["blocks"])
    assert "Audited by u0lead: correct" in blocks and "signoff:audit-" not in blocks

    late = button_click(
        item_id=str(audit_id),
        verb="audit-wrong",
        user="U0AGENT1",
        ts=ts,
        trigger_id=world.slack.new_trigger_id(),
    )
    late["channel"] = {"id": AUDITS}
    await world.click(late)
    [told] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    assert told.params["text"].startswith("Already audited by u0lead (correct) at ")
    assert (await answer(world, audit_id)).verdict == "correct"


async def test_fix_opens_the_edit_modal_and_records_wrong_with_the_fix(world: SlackWorld) -> None:
    audit_id, ts = await auto_approved(world)
    click = button_click(
        item_id=str(audit_id),
        verb="audit-fix",
        user="U0AGENT1",  # a reviewer through the S0AGENTS group
        ts=ts,
        trigger_id=world.slack.new_trigger_id(),
    )
    click["channel"] = {"id": AUDITS}
    await world.click(click)
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    assert view["callback_id"] == "signoff:audit-fix"
    fixed = await world.click(
        view_submission(
            view,
            user="U0AGENT1",
            values={
                "f_subject": {"value": {"type": "plain_text_input", "value": "Refund: 2 days"}}
            },
        )
    )
    assert fixed.status_code == 200 and not fixed.content  # the modal closes
    await eventually(lambda: _answered(world, audit_id))
    audit = await answer(world, audit_id)
    assert audit.verdict == "wrong" and audit.corrected is not None
    assert audit.corrected["subject"] == "Refund: 2 days"
    assert audit.corrected["body"] == EMAIL["body"]


async def test_a_non_reviewer_cannot_audit(world: SlackWorld) -> None:
    audit_id, ts = await auto_approved(world)
    click = button_click(
        item_id=str(audit_id),
        verb="audit-wrong",
        user="U0INTERN",
        ts=ts,
        trigger_id=world.slack.new_trigger_id(),
    )
    click["channel"] = {"id": AUDITS}
    await world.click(click)
    [told] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    assert "not a reviewer of route 'support'" in told.params["text"]
    assert (await answer(world, audit_id)).verdict is None


async def _answered(world: SlackWorld, audit_id: int) -> bool:
    return (await answer(world, audit_id)).verdict is not None
