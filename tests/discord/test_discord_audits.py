"""Blind audit cards on Discord, with the real discord.py bot in SimCord's Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.audits import DiscordAudits
from adapters.discord.bot import DiscordSurface, SignoffBot
from bot.app import System, build
from bot.auth import Integrator
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage import audits as audit_store
from storage.migrate import upgrade
from storage.models import Audit
from tests.fakes.surface import RecordingSurface

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


@dataclass
class AuditWorld:
    env: Any
    system: System
    integrator: Integrator
    channel: Any
    lead: Any
    intern: Any


@pytest.fixture
async def world(simcord_env: Any, tmp_path: Path) -> AsyncIterator[AuditWorld]:
    guild = simcord_env.create_guild()
    reviews = guild.create_text_channel("code-review")
    audits = guild.create_text_channel("audits")
    lead = guild.add_member(simcord_env.create_user("lead"))
    intern = guild.add_member(simcord_env.create_user("intern"))
    routes = parse_routes(
        {
            "routes": {
                "code": {
                    "surfaces": [{"type": "discord", "channel": str(reviews.id)}],
                    "reviewers": {"discord": [str(lead.id)]},
                    "thresholds": {"auto_approve_at": 0.9},
                    "audit": {"rate": 1.0, "surface": "discord", "channel": str(audits.id)},
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
    assert integrator is not None and system.audits is not None
    bot.audits = DiscordAudits(desk=system.audits, web_url="http://127.0.0.1:8000")
    try:
        yield AuditWorld(simcord_env, system, integrator, audits, lead, intern)
    finally:
        await system.close()


async def auto_approved(world: AuditWorld) -> tuple[int, Any]:
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Bump a",
        confidence=0.96,
        content={"repository": "o/r", "title": "Bump a", "diff": DIFF},
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    assert item.outcome == "auto_approved"
    await world.env.settle()
    async with world.system.sessions() as session:
        [open_] = await audit_store.open_audits(session, routes=["code"])
    assert open_.audit.id is not None
    return open_.audit.id, world.channel.last_message


async def stored(world: AuditWorld, audit_id: int) -> Audit:
    async with world.system.sessions() as session:
        audit = await audit_store.get_audit(session, audit_id=audit_id)
    assert audit is not None
    return audit


def embed_text(message: Any) -> str:
    embed = message.embeds[0]
    parts = [embed.title or "", embed.description or ""]
    parts += [f"{f.name} {f.value}" for f in embed.fields]
    return " ".join(parts).lower()


async def test_a_blind_card_answered_correct_once(world: AuditWorld) -> None:
    audit_id, message = await auto_approved(world)
    text = embed_text(message)
    assert "approv" not in text and "auto" not in text and "reject" not in text
    assert "audit: bump a" in text and "0.96" in text and "+a = 2" in text
    assert message.embeds[0].url == f"http://127.0.0.1:8000/audits/{audit_id}"
    ids = [c.custom_id for row in message.components for c in row.children]
    assert ids == [f"signoff:audit-{v}:{audit_id}" for v in ("correct", "wrong", "fix")]

    await world.lead.click(message, custom_id=f"signoff:audit-correct:{audit_id}")
    audit = await stored(world, audit_id)
    assert (audit.verdict, audit.surface, audit.actor_name) == ("correct", "discord", "lead")
    edited = world.channel.last_message
    assert all(c.disabled for row in edited.components for c in row.children)
    assert any(
        f.name == "Status" and f.value == "Audited by lead: correct"
        for f in edited.embeds[0].fields
    )


async def test_a_late_answer_is_told_who_audited_first(world: AuditWorld) -> None:
    audit_id, message = await auto_approved(world)
    async with world.system.sessions() as session, session.begin():  # another surface won
        await audit_store.answer_if_open(
            session,
            audit_id=audit_id,
            verdict="correct",
            corrected=None,
            surface="web",
            actor_id="ann",
            actor_name="ann",
            at=world.system.clock.now(),
        )
    late = await world.lead.click(message, custom_id=f"signoff:audit-wrong:{audit_id}")
    assert late.ephemeral
    assert late.response.content.startswith("Already audited by ann (correct) at ")
    assert (await stored(world, audit_id)).verdict == "correct"


async def test_fix_records_wrong_with_the_corrected_diff(world: AuditWorld) -> None:
    audit_id, message = await auto_approved(world)
    shown = await world.lead.click(message, custom_id=f"signoff:audit-fix:{audit_id}")
    assert shown.modal is not None
    fixed = DIFF.replace("+a = 2", "+a = 3")
    await world.lead.submit_modal(shown, {"title": "Bump a to 3", "diff": fixed})
    audit = await stored(world, audit_id)
    assert audit.verdict == "wrong" and audit.corrected is not None
    assert audit.corrected["diff"] == fixed and audit.corrected["title"] == "Bump a to 3"


async def test_a_non_reviewer_is_refused(world: AuditWorld) -> None:
    audit_id, message = await auto_approved(world)
    result = await world.intern.click(message, custom_id=f"signoff:audit-wrong:{audit_id}")
    assert result.ephemeral and "not a reviewer of route 'code'" in result.response.content
    assert (await stored(world, audit_id)).verdict is None
