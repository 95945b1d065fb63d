"""``/signoff next`` in Discord (SimCord): the most uncertain draft, reserved, ephemeral."""

from __future__ import annotations

from typing import Any

from simcord.components import walk_components

from bot.schemas import ItemCreate
from tests.discord.conftest import DiscordWorld

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


async def submit(world: DiscordWorld, title: str, confidence: float) -> str:
    data = ItemCreate(
        route="code",
        kind="code_change",
        title=title,
        confidence=confidence,
        content={"repository": "o/r", "title": title, "diff": DIFF},
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    await world.env.settle()
    return item.id


def custom_ids(message: Any) -> list[str]:
    """The buttons of an interaction's answer (raw component payloads)."""
    return [c["custom_id"] for c in walk_components(message.components) if "custom_id" in c]


async def test_next_shows_the_reserved_card_to_the_reviewer_alone(world: DiscordWorld) -> None:
    await submit(world, "Bump b", 0.9)
    unsure = await submit(world, "Bump a", 0.55)  # closest to 0.5, the route's boundary
    other = await submit(world, "Bump c", 0.2)

    shown = await world.lead.slash(world.channel, "signoff next")
    assert shown.ephemeral
    card = shown.response
    assert card.embeds[0].title == "Bump a"
    assert custom_ids(card) == [f"signoff:{v}:{unsure}" for v in ("approve", "edit", "reject")]
    status = next(f.value for f in card.embeds[0].fields if f.name == "Status")
    assert status.startswith("Reserved for you until")

    # rita (by her role) gets the next one; the intern, who may not decide, nothing
    rita = await world.rita.slash(world.channel, "signoff next")
    assert custom_ids(rita.response)[0] == f"signoff:approve:{other}"
    nothing = await world.intern.slash(world.channel, "signoff next")
    assert nothing.ephemeral and nothing.response.content == "Nothing is waiting for you."

    # the ephemeral card's Approve decides, like the channel card's
    await world.lead.click(card, custom_id=f"signoff:approve:{unsure}")
    item = await world.system.reader.get(item_id=unsure)
    assert item.outcome == "approved" and item.decisions[-1].surface == "discord"
