"""One-click buttons on Discord cards (comparisons, labels) with the real discord.py bot
in SimCord's simulated Discord: persistent DynamicItems, decided through the core."""

from __future__ import annotations

import json
import random
from typing import Any

from adapters.discord.bot import SignoffBot
from adapters.discord.embeds import card_message
from bot.card import CardChoice, CardField, ReviewCard
from bot.schemas import ItemCreate
from tests.discord.conftest import DiscordWorld

PAIR = {"prompt": "Greet Jane", "a": "Hi Jane.", "b": "Hello Jane!"}


class Swapped(random.Random):
    def random(self) -> float:  # every comparison shows b first, as "A"
        return 0.0


async def submit(world: DiscordWorld, kind: str, content: dict[str, Any]) -> tuple[str, Any]:
    data = ItemCreate(route="code", kind=kind, title="Pick one", content=content)
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    await world.env.settle()
    return item.id, world.channel.last_message


def rows(message: Any) -> list[list[str]]:
    return [[c.custom_id for c in row.children] for row in message.components]


async def test_a_comparison_click_after_a_restart_records_the_candidate(
    world: DiscordWorld,
) -> None:
    world.system.service.ab_rng = Swapped()
    item_id, message = await submit(world, "comparison", PAIR)
    assert rows(message) == [
        [f"signoff:choose:{item_id}:{v}" for v in ("A", "B", "tie", "both_bad")]
    ]
    labels = [c.label for row in message.components for c in row.children]
    assert labels == ["A better", "B better", "Tie", "Both bad"]
    description = message.embeds[0].description
    assert description == "**Prompt**\nGreet Jane\n\n**A**\nHello Jane!\n\n**B**\nHi Jane."

    fresh = SignoffBot()  # the buttons are DynamicItems: they outlive the process
    world.wire(fresh)
    await world.env.restart_bot(fresh)
    await world.lead.click(message, custom_id=f"signoff:choose:{item_id}:A")
    item = await world.system.reader.get(item_id=item_id)
    assert item.state == "approved" and item.decisions[-1].surface == "discord"
    assert item.decisions[-1].choice == "b"
    assert rows(world.channel.last_message) == []  # decided: no verdicts left to click
    await world.system.worker.run_once()
    release = next(r for r in world.receiver.accepted() if r.path == "/release")
    final = json.loads(release.body)["item"]["final_content"]
    assert final == {"prompt": "Greet Jane", "winner": "b", "text": "Hello Jane!"}


async def test_a_label_click_decides_with_that_label(world: DiscordWorld) -> None:
    labels = ["billing", "refund", "spam", "x" * 120]
    item_id, message = await submit(
        world, "label", {"text": "Where is my money?", "labels": labels}
    )
    assert rows(message) == [
        [f"signoff:{v}:{item_id}" for v in ("approve", "edit", "reject")],
        [f"signoff:label:{item_id}:{n}" for n in range(4)],
    ]
    assert len(message.components[1].children[3].label) == 80
    await world.rita.click(message, custom_id=f"signoff:label:{item_id}:1")
    item = await world.system.reader.get(item_id=item_id)
    assert item.outcome == "edited" and item.final_content is not None
    assert item.final_content["labels"] == ["refund"] and item.decisions[-1].actor_name == "rita"


async def test_a_non_reviewer_click_is_refused_privately(world: DiscordWorld) -> None:
    item_id, message = await submit(world, "comparison", PAIR)
    result = await world.intern.click(message, custom_id=f"signoff:choose:{item_id}:tie")
    [told] = result.followups
    assert told.ephemeral and "not a reviewer of route 'code'" in told.content
    assert (await world.system.reader.get(item_id=item_id)).state == "pending"


def test_a_very_long_a_leaves_room_for_b_and_is_attached_whole() -> None:
    long_a = "Hello Jane, " * 2000
    card = ReviewCard(
        item_id="itm_X",
        kind="comparison",
        title="Which?",
        route="code",
        confidence=None,
        requested_by=None,
        due=None,
        actions=(),
        sections=(
            CardField("Prompt", "Greet Jane", False),
            CardField("A", long_a, False),
            CardField("B", "Hi Jane.", False),
        ),
        choices=(CardChoice("choose", "A", "A better"),),
    )
    message = card_message(card, web_url="http://signoff/items/itm_X")
    description = message.embed.description or ""
    assert description.endswith("**B**\nHi Jane.") and len(message.embed) <= 6000
    assert "attached as `itm_X-A.txt`" in description
    [attached] = message.files
    assert attached.filename == "itm_X-A.txt" and attached.fp.read().decode() == long_a
