"""``/signoff next`` in Slack: the most uncertain draft, reserved, as an ephemeral card."""

from __future__ import annotations

import json
from typing import Any

from bot.schemas import ItemCreate
from tests.fakes.slack import block_problems
from tests.slack.conftest import SlackWorld, button_click, eventually

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, refunded."}


async def submit(world: SlackWorld, title: str, confidence: float) -> str:
    data = ItemCreate(
        route="support", kind="email", title=title, content=EMAIL, confidence=confidence
    )
    return (await world.system.service.submit(integrator=world.integrator, data=data)).item.id


def buttons(answer: dict[str, Any]) -> list[str]:
    return [
        e["action_id"] for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


async def test_next_answers_with_the_reserved_card_and_its_buttons(world: SlackWorld) -> None:
    sure = await submit(world, "Sure thing", 0.95)
    unsure = await submit(world, "Coin flip", 0.52)  # closest to 0.5: the route's boundary
    middling = await submit(world, "Maybe", 0.3)

    answer = await world.command("next", user="U0LEAD")
    assert answer.status_code == 200
    body = answer.json()
    assert "response_type" not in body  # a slash command's answer is ephemeral by default
    assert block_problems(body["blocks"]) == []
    assert buttons(body) == [f"signoff:{v}:{unsure}" for v in ("approve", "edit", "reject")]
    assert body["blocks"][0]["text"]["text"] == "Coin flip"
    shown = json.dumps(body["blocks"])
    assert "confidence 0.52" in shown and "Reserved for you until" in shown
    assert f"/items/{unsure}|Coin flip>" in body["text"]

    # a member of a listed user group gets the next one; the lead, asking again, his own
    agent = (await world.command("next", user="U0AGENT1")).json()
    assert buttons(agent)[0] == f"signoff:approve:{middling}"
    again = (await world.command("next", user="U0LEAD")).json()
    assert buttons(again)[0] == f"signoff:approve:{unsure}"
    nobody = await world.command("next", user="U0INTERN")  # not a reviewer of the route
    assert nobody.text == "Nothing is waiting for you."

    # the buttons on the ephemeral card decide, like those on the channel's card
    click = button_click(
        item_id=unsure,
        verb="approve",
        user="U0LEAD",
        ts="1700000000.000100",
        trigger_id=world.slack.new_trigger_id(),
    )
    assert (await world.click(click)).status_code == 200

    async def approved() -> bool:
        return (await world.system.reader.get(item_id=unsure)).outcome == "approved"

    await eventually(approved)
    after = (await world.command("next", user="U0LEAD")).json()
    assert buttons(after)[0] == f"signoff:approve:{sure}"
