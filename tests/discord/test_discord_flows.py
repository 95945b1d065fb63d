"""Discord behaviour with the real discord.py bot in SimCord's simulated Discord."""

from __future__ import annotations

import json
from typing import Any

from adapters.discord.bot import SignoffBot
from bot.app import build
from bot.ports import Actor
from bot.schemas import ItemCreate
from bot.settings import load_settings
from tests.discord.conftest import DiscordWorld
from tests.fakes.surface import RecordingSurface

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


async def post(world: DiscordWorld, **content: Any) -> tuple[str, Any]:
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Bump a",
        confidence=0.5,
        content={"repository": "o/r", "title": "Bump a", "diff": DIFF, **content},
        callback_url=f"{world.receiver.url}/callback",
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    await world.env.settle()
    return item.id, world.channel.last_message


async def test_card_has_three_buttons_and_approve_releases(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    ids = [c.custom_id for row in message.components for c in row.children]
    assert ids == [f"signoff:{v}:{item_id}" for v in ("approve", "edit", "reject")]
    assert message.embeds[0].title == "Bump a"

    await world.lead.click(message, custom_id=f"signoff:approve:{item_id}")
    item = await world.system.reader.get(item_id=item_id)
    assert item.outcome == "approved" and item.decisions[-1].surface == "discord"
    edited = world.channel.last_message
    assert all(c.disabled for row in edited.components for c in row.children)
    assert any(
        f.name == "Status" and f.value.startswith("Approved by lead")
        for f in edited.embeds[0].fields
    )
    await world.system.worker.run_once()
    assert sorted(r.path for r in world.receiver.accepted()) == ["/callback", "/release"]


async def test_edit_modal_releases_the_edited_content(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    shown = await world.lead.click(message, custom_id=f"signoff:edit:{item_id}")
    assert shown.modal is not None
    edited_diff = DIFF.replace("+a = 2", "+a = 3")
    await world.lead.submit_modal(shown, {"title": "Bump a to 3", "diff": edited_diff})
    item = await world.system.reader.get(item_id=item_id)
    assert item.outcome == "edited" and item.final_content is not None
    assert item.final_content["diff"] == edited_diff
    await world.system.worker.run_once()
    release = next(r for r in world.receiver.accepted() if r.path == "/release")
    assert json.loads(release.body)["item"]["final_content"]["title"] == "Bump a to 3"


async def test_reject_modal_stores_the_reason(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    shown = await world.lead.click(message, custom_id=f"signoff:reject:{item_id}")
    await world.lead.submit_modal(
        shown, {"reason_code": "breaks tests", "reason_text": "test_a fails"}
    )
    item = await world.system.reader.get(item_id=item_id)
    assert (item.state, item.decisions[-1].reason_code) == ("rejected", "breaks tests")


async def test_a_non_reviewer_is_refused(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    result = await world.intern.click(message, custom_id=f"signoff:approve:{item_id}")
    assert result.ephemeral and "not a reviewer of route 'code'" in result.response.content
    assert (await world.system.reader.get(item_id=item_id)).state == "pending"


async def test_a_click_on_an_item_decided_meanwhile_says_who_decided(
    world: DiscordWorld,
) -> None:
    item_id, message = await post(world)
    # Decided by another replica before this card was updated: the buttons still show.
    other = build(
        load_settings({"SIGNOFF_DATABASE_URL": world.system.settings.database_url}),
        routes=world.system.routes,
        surfaces={"web": RecordingSurface()},
    )
    try:
        await other.service.decide(
            item_id=item_id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
        )
    finally:
        await other.close()
    result = await world.lead.click(message, custom_id=f"signoff:reject:{item_id}")
    assert result.ephemeral and result.response.content.startswith("Already approved by ann")


async def test_mentions_in_a_draft_are_not_parsed(world: DiscordWorld) -> None:
    await post(world, description="@everyone <@&123> <@456> look")
    calls = (
        [c for c in world.env.rest_calls if c.method == "POST" and "/messages" in c.path]
        if hasattr(world.env, "rest_calls")
        else []
    )
    message = world.channel.last_message
    assert "@everyone" in message.embeds[0].description
    assert message.mention_everyone is False and message.raw_role_mentions == []
    del calls


async def test_buttons_and_modals_work_across_a_restart(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    other_id, other_message = await post(world)
    shown = await world.lead.click(message, custom_id=f"signoff:reject:{item_id}")
    fresh = SignoffBot()
    world.wire(fresh)
    await world.env.restart_bot(fresh)  # the modal object and the old view are gone
    await world.lead.submit_modal(shown, {"reason_code": "breaks tests", "reason_text": "x"})
    assert (await world.system.reader.get(item_id=item_id)).state == "rejected"
    await world.lead.click(other_message, custom_id=f"signoff:approve:{other_id}")
    assert (await world.system.reader.get(item_id=other_id)).state == "approved"


async def test_slash_commands_queue_and_stats(world: DiscordWorld) -> None:
    item_id, _ = await post(world)
    queue = await world.lead.slash(world.channel, "signoff queue")
    assert queue.ephemeral and queue.response.content.startswith("**1 waiting for you**")
    assert f"/items/{item_id})" in queue.response.content
    nothing = await world.intern.slash(world.channel, "signoff queue")
    assert nothing.response.content == "Nothing is waiting for you."
    stats = await world.lead.slash(world.channel, "signoff stats")
    assert stats.response.content == "**Today in code** (UTC): 1 waiting; nothing settled yet."


async def test_an_edit_posts_its_diff_in_a_thread(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    shown = await world.lead.click(message, custom_id=f"signoff:edit:{item_id}")
    await world.lead.submit_modal(shown, {"title": "Bump a to 3", "diff": DIFF})
    [thread] = world.channel.threads
    reply = thread.last_message
    assert "-title: Bump a" in reply.content and "+title: Bump a to 3" in reply.content


async def test_a_field_too_long_for_a_discord_form_links_to_the_web_editor(
    world: DiscordWorld,
) -> None:
    item_id, message = await post(world, description="x" * 4500)
    result = await world.lead.click(message, custom_id=f"signoff:edit:{item_id}")
    assert result.ephemeral and result.modal is None
    assert "description is longer than a Discord form holds" in result.response.content
    assert f"/items/{item_id}" in result.response.content


async def test_a_3000_line_diff_posts_with_the_whole_diff_attached(world: DiscordWorld) -> None:
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1,3000 +1,3000 @@\n" + "".join(
        f"-old_{n} = {n}\n+new_{n} = {n}\n" for n in range(1500)
    )
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Big",
        confidence=0.5,
        content={"repository": "o/r", "title": "Big", "diff": diff},
    )
    await world.system.service.submit(integrator=world.integrator, data=data)
    await world.env.settle()
    message = world.channel.last_message
    [attachment] = message.attachments
    assert attachment.filename.endswith(".diff")
    assert (await attachment.read()).decode() == diff
    assert len(message.embeds[0]) <= 6000


async def test_a_decision_elsewhere_updates_the_discord_card(world: DiscordWorld) -> None:
    item_id, _ = await post(world)
    await world.system.service.decide(
        item_id=item_id,
        action="reject",
        reason_code="breaks tests",
        actor=Actor(surface="slack", user_id="U1", name="sam"),
    )
    await world.env.settle()
    card = world.channel.last_message
    assert all(c.disabled for row in card.components for c in row.children)
    status = next(f.value for f in card.embeds[0].fields if f.name == "Status")
    assert status.startswith("Rejected by sam: breaks tests")


async def test_a_member_with_a_reviewer_role_may_decide(world: DiscordWorld) -> None:
    item_id, message = await post(world)
    await world.rita.click(message, custom_id=f"signoff:approve:{item_id}")
    item = await world.system.reader.get(item_id=item_id)
    assert item.outcome == "approved" and item.decisions[-1].actor_name == "rita"
