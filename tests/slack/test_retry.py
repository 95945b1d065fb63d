"""A failed release on a Slack card: the note, the Retry button, and what a click does."""

from __future__ import annotations

import json
import time

from adapters.slack.blocks import card_blocks, fallback_text
from bot.card import ReviewCard
from bot.ports import Actor
from bot.schemas import ItemCreate
from tests.slack.conftest import CHANNEL, SlackWorld, button_click, eventually

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, refunded."}


async def failed_release(world: SlackWorld) -> tuple[str, str]:
    """An item approved in Slack whose release the target refused for good (HTTP 400)."""
    data = ItemCreate(route="support", kind="email", title="Refund for order 1234", content=EMAIL)
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    [message] = world.slack.messages[CHANNEL]
    await world.system.service.decide(
        item_id=item.id,
        action="approve",
        actor=Actor(surface="slack", user_id="U0LEAD", name="u0lead"),
    )
    world.receiver.then = 400  # a refusal: not retried by the worker
    assert await world.system.worker.run_once() == 1
    assert (await world.system.reader.get(item_id=item.id)).release_state == "failed"
    return item.id, message["ts"]


def card(world: SlackWorld, ts: str) -> str:
    message = world.slack.message(CHANNEL, ts)
    assert message is not None
    return json.dumps(message["blocks"])


def buttons(world: SlackWorld, ts: str) -> list[str]:
    message = world.slack.message(CHANNEL, ts)
    assert message is not None
    return [
        e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


def retry_click(world: SlackWorld, item_id: str, ts: str, user: str) -> dict[str, object]:
    return button_click(
        item_id=item_id, verb="retry", user=user, ts=ts, trigger_id=world.slack.new_trigger_id()
    )


async def release_state(world: SlackWorld, item_id: str) -> str:
    return (await world.system.reader.get(item_id=item_id)).release_state


async def release_is(world: SlackWorld, item_id: str, expected: str) -> bool:
    return await release_state(world, item_id) == expected


async def test_a_failed_release_shows_the_note_and_retry_releases_with_the_same_key(
    world: SlackWorld,
) -> None:
    item_id, ts = await failed_release(world)
    failed = card(world, ts)
    assert ":warning: Release failed: " in failed and "HTTP 400" in failed
    assert buttons(world, ts) == [f"signoff:retry:{item_id}"]
    assert "Approved by u0lead" in failed  # the decision stays on the card

    world.receiver.then = 200
    started = time.monotonic()
    answer = await world.click(retry_click(world, item_id, ts, "U0AGENT1"))  # via S0AGENTS
    assert answer.status_code == 200 and time.monotonic() - started < 3
    await eventually(lambda: release_is(world, item_id, "queued"))
    # The core refreshed the card: the note and the button are gone.
    await eventually(lambda: "Release failed" not in card(world, ts))
    assert buttons(world, ts) == []

    assert await world.system.worker.run_once() == 1
    assert await release_state(world, item_id) == "released"
    releases = [r for r in world.receiver.received if r.path == "/release"]
    assert [r.status for r in releases] == [400, 200]
    assert {r.headers["Idempotency-Key"] for r in releases} == {f"{item_id}:release"}
    released = card(world, ts)
    assert "Release failed" not in released and "signoff:retry" not in released
    assert "Approved by u0lead" in released
    assert world.slack.ephemerals == []  # success needs no extra message

    again = await world.click(retry_click(world, item_id, ts, "U0LEAD"))
    assert again.status_code == 200
    [told] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    assert told.params["user"] == "U0LEAD" and "not failed" in told.params["text"]
    assert await release_state(world, item_id) == "released"
    assert len([r for r in world.receiver.received if r.path == "/release"]) == 2


async def test_a_non_reviewer_cannot_retry(world: SlackWorld) -> None:
    item_id, ts = await failed_release(world)
    world.receiver.then = 200
    answer = await world.click(retry_click(world, item_id, ts, "U0INTERN"))
    assert answer.status_code == 200
    [refusal] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    assert refusal.params["user"] == "U0INTERN"
    assert "not a reviewer of route 'support'" in refusal.params["text"]
    assert await release_state(world, item_id) == "failed"
    assert await world.system.worker.run_once() == 0  # nothing was queued
    assert len(world.receiver.received) == 1
    assert buttons(world, ts) == [f"signoff:retry:{item_id}"]


def test_the_failed_note_is_escaped() -> None:
    # The note quotes the error, and a target's answer could contain anything.
    note = ReviewCard(
        item_id="itm_1",
        kind="email",
        title="t",
        route="support",
        confidence=None,
        requested_by=None,
        due=None,
        actions=("retry",),
        release_note="Release failed: <!channel> & <https://evil|bank>",
    )
    text = json.dumps(card_blocks(note, web_url="http://x"))
    assert "&lt;!channel&gt; &amp; &lt;https://evil|bank&gt;" in text and "<!channel>" not in text
    assert "Release failed: <!channel>" not in fallback_text(note)
