"""A failed release on a Discord card, with the real discord.py bot in SimCord: the
"Release" field, the Retry button (a DynamicItem, so it survives a restart), a click."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from adapters.discord.bot import DiscordReviews, SignoffBot
from adapters.discord.embeds import COLOURS, card_message
from bot.app import build
from bot.card import ReviewCard
from bot.digest import Digest
from bot.ports import Actor
from bot.reader import InboxReader
from bot.schemas import ItemCreate
from bot.settings import load_settings
from tests.discord.conftest import DiscordWorld
from tests.fakes.surface import RecordingSurface

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


def wire(world: DiscordWorld, bot: SignoffBot) -> None:
    """As the composition root does (``DiscordEdge.connect``), with the retry."""
    system = world.system
    bot.reviews = DiscordReviews(
        service=system.service,
        reader=system.reader,
        routes=system.routes,
        web_url="http://127.0.0.1:8000",
        digest=Digest(
            inbox=InboxReader(sessions=system.sessions, routes=system.routes),
            routes=system.routes,
            clock=system.clock,
        ),
        retry=system.retry,
    )


async def failed_release(world: DiscordWorld) -> str:
    """An approved item whose release the target refused for good (HTTP 400)."""
    wire(world, world.bot)
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Bump a",
        confidence=0.5,
        content={"repository": "o/r", "title": "Bump a", "diff": DIFF},
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    await world.env.settle()
    await world.system.service.decide(
        item_id=item.id,
        action="approve",
        actor=Actor(surface="discord", user_id=str(world.lead.id), name="lead"),
    )
    world.receiver.then = 400  # a refusal: the worker does not try again
    assert await world.system.worker.run_once() == 1
    await world.env.settle()
    assert (await world.system.reader.get(item_id=item.id)).release_state == "failed"
    return item.id


def buttons(message: Any) -> dict[str, bool]:
    """custom id → disabled, for every button of the card."""
    return {c.custom_id: c.disabled for row in message.components for c in row.children}


def release_field(message: Any) -> str | None:
    return next((f.value for f in message.embeds[0].fields if f.name == "Release"), None)


async def release_state(world: DiscordWorld, item_id: str) -> str:
    return (await world.system.reader.get(item_id=item_id)).release_state


async def test_a_failed_release_shows_the_field_and_retry_releases_with_the_same_key(
    world: DiscordWorld,
) -> None:
    item_id = await failed_release(world)
    card = world.channel.last_message
    note = release_field(card)
    assert note is not None and "Release failed: " in note and "HTTP 400" in note
    assert card.embeds[0].colour.value == COLOURS["release_failed"]
    assert buttons(card) == {
        f"signoff:approve:{item_id}": True,
        f"signoff:edit:{item_id}": True,
        f"signoff:reject:{item_id}": True,
        f"signoff:retry:{item_id}": False,
    }

    world.receiver.then = 200
    result = await world.rita.click(card, custom_id=f"signoff:retry:{item_id}")  # by role
    assert result.acknowledged and result.followups == []
    assert await release_state(world, item_id) == "queued"
    await world.env.settle()
    queued = world.channel.last_message
    assert release_field(queued) is None and f"signoff:retry:{item_id}" not in buttons(queued)

    assert await world.system.worker.run_once() == 1
    await world.env.settle()
    assert await release_state(world, item_id) == "released"
    releases = [r for r in world.receiver.received if r.path == "/release"]
    assert [r.status for r in releases] == [400, 200]
    assert {r.headers["Idempotency-Key"] for r in releases} == {f"{item_id}:release"}
    released = world.channel.last_message
    assert release_field(released) is None and all(buttons(released).values())
    assert released.embeds[0].colour.value == COLOURS["approved"]


async def test_a_non_reviewer_is_told_and_nothing_is_queued(world: DiscordWorld) -> None:
    item_id = await failed_release(world)
    result = await world.intern.click(
        world.channel.last_message, custom_id=f"signoff:retry:{item_id}"
    )
    [told] = result.followups
    assert told.ephemeral and "not a reviewer of route 'code'" in told.content
    assert await release_state(world, item_id) == "failed"
    assert await world.system.worker.run_once() == 0


async def test_retry_is_refused_once_the_release_is_no_longer_failed(
    world: DiscordWorld,
) -> None:
    item_id = await failed_release(world)
    card = world.channel.last_message
    # Retried by another replica (or `signoff releases retry`) that does not update this
    # card: the button still shows here.
    other = build(
        load_settings({"SIGNOFF_DATABASE_URL": world.system.settings.database_url}),
        routes=world.system.routes,
        surfaces={"web": RecordingSurface()},
    )
    try:
        await other.retry.retry(item_id=item_id, actor=None)
    finally:
        await other.close()
    result = await world.lead.click(card, custom_id=f"signoff:retry:{item_id}")
    [told] = result.followups
    assert told.ephemeral and "not failed" in told.content
    assert await release_state(world, item_id) == "queued"


async def test_the_retry_button_works_after_a_restart(world: DiscordWorld) -> None:
    item_id = await failed_release(world)
    card = world.channel.last_message
    fresh = SignoffBot()
    wire(world, fresh)
    await world.env.restart_bot(fresh)  # the old view objects are gone
    world.receiver.then = 200
    result = await world.lead.click(card, custom_id=f"signoff:retry:{item_id}")
    assert result.acknowledged and result.followups == []
    assert await release_state(world, item_id) == "queued"


def test_a_card_without_a_failed_release_has_no_release_field() -> None:
    card = ReviewCard(
        item_id="itm_1",
        kind="email",
        title="t",
        route="support",
        confidence=None,
        requested_by=None,
        due=None,
        actions=(),
        status="Approved by lead",
    )
    embed = card_message(card, web_url="http://x").embed
    assert "Release" not in [f.name for f in embed.fields]
    failed = replace(card, actions=("retry",), release_note="Release failed: 400 *bold* __x__")
    embed = card_message(failed, web_url="http://x").embed
    [note] = [f.value for f in embed.fields if f.name == "Release"]
    # A target's answer is shown as text, not as markdown.
    assert note is not None and "\\*bold\\*" in note


async def test_an_edit_diff_is_posted_once_however_often_the_card_changes(
    world: DiscordWorld,
) -> None:
    wire(world, world.bot)
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Bump a",
        content={"repository": "o/r", "title": "Bump a", "diff": DIFF},
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    await world.env.settle()
    await world.system.service.decide(
        item_id=item.id,
        action="edit",
        actor=Actor(surface="discord", user_id=str(world.lead.id), name="lead"),
        content={"title": "Bump a to 2"},
    )
    world.receiver.then = 400
    await world.system.worker.run_once()  # failed: the card changes
    world.receiver.then = 200
    await world.system.retry.retry(item_id=item.id, actor=None)  # queued: it changes
    await world.system.worker.run_once()  # released: it changes again
    await world.env.settle()
    assert await release_state(world, item.id) == "released"
    [thread] = world.channel.threads
    [diff] = thread.history()
    assert "+title: Bump a to 2" in diff.content
