"""One-click buttons in Slack: a comparison's verdicts and a label item's labels, through
real slack-bolt, real signatures and the Slack emulator (which enforces Block Kit's
limits: 75 characters of button text, 255 of an action id)."""

from __future__ import annotations

import json
import random
from typing import Any

from adapters.slack.blocks import card_blocks
from bot.card import CardChoice, CardField, ReviewCard
from bot.schemas import ItemCreate
from tests.fakes.slack import block_problems
from tests.slack.conftest import CHANNEL, SlackWorld, button_click, eventually

PAIR = {"prompt": "Greet Jane", "a": "Hi Jane.", "b": "Hello Jane!"}
LONG_LABEL = "a label far longer than the seventy-five characters a Slack button can say " * 2


class Swapped(random.Random):
    def random(self) -> float:  # every comparison shows b first, as "A"
        return 0.0


async def submit(world: SlackWorld, kind: str, content: dict[str, Any]) -> tuple[str, Any]:
    data = ItemCreate(route="support", kind=kind, title="Pick one", content=content)
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    [message] = world.slack.messages[CHANNEL]
    return item.id, message


def choice_click(world: SlackWorld, item_id: str, action_id: str, ts: str) -> dict[str, Any]:
    """A real block_actions payload (shared fixture) for one of the one-click buttons."""
    payload = button_click(
        item_id=item_id, verb="x", user="U0LEAD", ts=ts, trigger_id=world.slack.new_trigger_id()
    )
    payload["actions"][0].update(action_id=action_id, block_id=f"signoff-choices:{item_id}")
    return payload


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def test_a_comparison_click_records_the_candidate_and_releases_the_winner(
    world: SlackWorld,
) -> None:
    world.system.service.ab_rng = Swapped()
    item_id, message = await submit(world, "comparison", PAIR)
    shown = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert shown == ["*Prompt*\nGreet Jane", "*A*\nHello Jane!", "*B*\nHi Jane."]
    ids = [e["action_id"] for e in buttons(message["blocks"])]
    assert ids == [f"signoff:choose:{item_id}:{v}" for v in ("A", "B", "tie", "both_bad")]
    texts = [e["text"]["text"] for e in buttons(message["blocks"])]
    assert texts == ["A better", "B better", "Tie", "Both bad"]
    assert "swap" not in json.dumps(message["blocks"]).lower()

    answer = await world.click(
        choice_click(world, item_id, f"signoff:choose:{item_id}:A", message["ts"])
    )
    assert answer.status_code == 200
    item = await eventually(lambda: _settled(world, item_id))
    assert item.decisions[-1].choice == "b" and item.decisions[-1].surface == "slack"
    [update] = await eventually(lambda: world.slack.calls_to("chat.update"))
    assert "signoff:choose" not in json.dumps(update.params["blocks"])
    await world.system.worker.run_once()
    release = next(r for r in world.receiver.accepted() if r.path == "/release")
    final = json.loads(release.body)["item"]["final_content"]
    assert final == {"prompt": "Greet Jane", "winner": "b", "text": "Hello Jane!"}


async def test_a_label_click_decides_with_that_label(world: SlackWorld) -> None:
    labels = ["billing", "refund", LONG_LABEL]
    item_id, message = await submit(
        world, "label", {"text": "Where is my money?", "labels": labels}
    )
    choices = next(
        b for b in message["blocks"] if b.get("block_id", "").startswith("signoff-choices:")
    )
    assert [e["action_id"] for e in choices["elements"]] == [
        f"signoff:label:{item_id}:{n}" for n in range(3)
    ]
    texts = [e["text"]["text"] for e in choices["elements"]]
    assert texts[:2] == ["billing", "refund"] and len(texts[2]) == 75 and texts[2].endswith("…")
    assert message["blocks"][-1]["elements"][0]["action_id"] == f"signoff:approve:{item_id}"

    await world.click(choice_click(world, item_id, f"signoff:label:{item_id}:1", message["ts"]))
    item = await eventually(lambda: _settled(world, item_id))
    assert item.outcome == "edited" and item.final_content is not None
    assert item.final_content["labels"] == ["refund"] and item.decisions[-1].actor_id == "U0LEAD"


async def test_a_non_reviewer_click_is_refused_privately(world: SlackWorld) -> None:
    item_id, message = await submit(world, "comparison", PAIR)
    payload = choice_click(world, item_id, f"signoff:choose:{item_id}:tie", message["ts"])
    payload["user"] = {"id": "U0STRANGER", "username": "stranger", "name": "stranger"}
    await world.click(payload)
    [told] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    assert "not a reviewer of route 'support'" in told.params["text"]
    assert (await world.system.reader.get(item_id=item_id)).state == "pending"


async def _settled(world: SlackWorld, item_id: str) -> object:
    item = await world.system.reader.get(item_id=item_id)
    return item if item.state != "pending" else None


def test_a_very_long_a_leaves_room_for_b_within_the_limits() -> None:
    card = ReviewCard(
        item_id="itm_X",
        kind="comparison",
        title="Which?",
        route="support",
        confidence=None,
        requested_by=None,
        due=None,
        actions=(),
        sections=(
            CardField("Prompt", "Greet Jane", False),
            CardField("A", "Hello Jane & <friends>\n" * 5000, False),
            CardField("B", "Hi Jane.", False),
        ),
        choices=tuple(CardChoice("choose", v, v) for v in ("A", "B", "tie", "both_bad")),
    )
    blocks = card_blocks(card, web_url="http://signoff/items/itm_X")
    assert block_problems(blocks) == []
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert texts[-1] == "*B*\nHi Jane."  # not pushed off the card by A
    assert any("more characters of A" in t and "http://signoff/items/itm_X" in t for t in texts)
