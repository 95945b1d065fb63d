"""Slack end to end in HTTP mode: real slack-bolt, real signatures, the Slack emulator."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest

from bot.app import build, create_app
from bot.ports import Actor
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from tests.slack.conftest import (
    CHANNEL,
    SlackWorld,
    button_click,
    eventually,
    routes_doc,
    view_submission,
)

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, refunded."}


async def post_item(world: SlackWorld, **content: object) -> tuple[str, str]:
    data = ItemCreate(
        route="support",
        kind="email",
        title="Refund for order 1234",
        content={**EMAIL, **content},
        confidence=0.5,
        callback_url=f"{world.receiver.url}/callback",
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    [message] = world.slack.messages[CHANNEL]
    return item.id, message["ts"]


async def state(world: SlackWorld, item_id: str) -> str:
    return (await world.system.reader.get(item_id=item_id)).state


async def test_approve_click_decides_updates_the_card_and_releases(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    card = world.slack.messages[CHANNEL][0]
    assert card["blocks"][-1]["elements"][0]["action_id"] == f"signoff:approve:{item_id}"

    started = time.monotonic()
    answer = await world.click(
        button_click(
            item_id=item_id,
            verb="approve",
            user="U0LEAD",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    assert answer.status_code == 200 and time.monotonic() - started < 3
    item = await eventually(lambda: _settled(world, item_id))
    assert item.outcome == "approved" and item.decisions[-1].actor_id == "U0LEAD"
    assert item.decisions[-1].surface == "slack"
    updated = await eventually(lambda: world.slack.calls_to("chat.update"))
    blocks = json.dumps(updated[-1].params["blocks"])
    assert "Approved by u0lead" in blocks and "signoff:approve" not in blocks
    await world.system.worker.run_once()
    paths = sorted(r.path for r in world.receiver.accepted())
    assert paths == ["/callback", "/release"]


async def _settled(world: SlackWorld, item_id: str) -> object:
    item = await world.system.reader.get(item_id=item_id)
    return item if item.state != "pending" else None


async def test_edit_opens_a_modal_and_releases_the_edited_version(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    await world.click(
        button_click(
            item_id=item_id,
            verb="edit",
            user="U0AGENT1",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    assert view["callback_id"] == "signoff:edit"
    subject = next(b for b in view["blocks"] if b["block_id"] == "f_subject")
    assert subject["element"]["initial_value"] == "Your refund"

    bad = await world.click(
        view_submission(
            view,
            user="U0AGENT1",
            values={
                "f_to": {"value": {"type": "plain_text_input", "value": "not-an-address"}},
            },
        )
    )
    answer = bad.json()
    assert answer["response_action"] == "errors" and "f_to" in answer["errors"]
    assert await state(world, item_id) == "pending"

    good = await world.click(
        view_submission(
            view,
            user="U0AGENT1",
            values={
                "f_subject": {"value": {"type": "plain_text_input", "value": "Refund issued"}},
                "f_body": {"value": {"type": "plain_text_input", "value": "Hi Jane, all done."}},
            },
        )
    )
    assert good.status_code == 200 and not good.content  # a plain ack closes the modal
    item = await eventually(lambda: _settled(world, item_id))  # decided after the ack
    assert item.outcome == "edited" and item.final_content is not None
    assert item.final_content["subject"] == "Refund issued"
    [update] = await eventually(lambda: world.slack.calls_to("chat.update"))
    updated = json.dumps(update.params["blocks"])
    assert "Edited and approved by u0agent1" in updated
    [reply] = await eventually(
        lambda: [m for m in world.slack.messages[CHANNEL] if m["thread_ts"] == ts]
    )
    diff = json.dumps(reply["blocks"])
    assert "-subject: Your refund" in diff and "+subject: Refund issued" in diff
    await world.system.worker.run_once()
    release = next(r for r in world.receiver.accepted() if r.path == "/release")
    assert json.loads(release.body)["item"]["final_content"]["body"] == "Hi Jane, all done."
    # the release refreshed the card; the thread looked for the diff and kept just one
    assert world.system.slack is not None
    await world.system.slack.surface.drain()
    assert len(world.slack.calls_to("chat.update")) == 2
    assert world.slack.calls_to("conversations.replies")
    replies = [m for m in world.slack.messages[CHANNEL] if m["thread_ts"] == ts]
    assert replies == [reply]


async def test_reject_modal_stores_the_reason_and_calls_back(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    await world.click(
        button_click(
            item_id=item_id,
            verb="reject",
            user="U0LEAD",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    await world.click(
        view_submission(
            view,
            user="U0LEAD",
            values={
                "reason_code": {
                    "value": {"type": "static_select", "selected_option": {"value": "wrong facts"}}
                },
                "reason_text": {
                    "value": {"type": "plain_text_input", "value": "it was 40, not 400"}
                },
            },
        )
    )
    item = await eventually(lambda: _settled(world, item_id))
    assert (item.state, item.decisions[-1].reason_code) == ("rejected", "wrong facts")
    await world.system.worker.run_once()
    [callback] = world.receiver.accepted()
    decided = json.loads(callback.body)["item"]["decisions"][-1]
    assert decided["reason_text"] == "it was 40, not 400"


@pytest.mark.parametrize(("secret", "age"), [("wrong-secret", 0), ("test-signing-secret", 301)])
async def test_a_bad_signature_or_an_old_timestamp_is_refused(
    world: SlackWorld, secret: str, age: float
) -> None:
    item_id, ts = await post_item(world)
    answer = await world.click(
        button_click(
            item_id=item_id,
            verb="approve",
            user="U0LEAD",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        ),
        secret=secret,
        age=age,
    )
    assert answer.status_code == 401
    await asyncio.sleep(0)  # let any (wrongly) scheduled listener run
    assert await state(world, item_id) == "pending"


async def test_two_clicks_at_once_make_one_decision(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    clicks = [
        button_click(
            item_id=item_id,
            verb="approve",
            user=user,
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
        for user in ("U0LEAD", "U0AGENT2")
    ]
    answers = await asyncio.gather(*(world.click(c) for c in clicks))
    assert [a.status_code for a in answers] == [200, 200]
    [ephemeral] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    item = await world.system.reader.get(item_id=item_id)
    assert len(item.decisions) == 1
    winner = item.decisions[0].actor_name
    assert ephemeral.params["text"].startswith(f"Already approved by {winner} at ")
    assert ephemeral.params["user"] != item.decisions[0].actor_id


async def test_a_non_reviewer_is_refused_and_logged(
    world: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    item_id, ts = await post_item(world)
    with caplog.at_level(logging.WARNING, logger="signoff.slack"):
        await world.click(
            button_click(
                item_id=item_id,
                verb="approve",
                user="U0INTERN",
                ts=ts,
                trigger_id=world.slack.new_trigger_id(),
            )
        )
        [refusal] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    assert "not a reviewer of route 'support'" in refusal.params["text"]
    assert await state(world, item_id) == "pending"
    assert any(
        "U0INTERN" in r.getMessage() and "may not approve" in r.getMessage() for r in caplog.records
    )


async def test_a_member_of_a_reviewer_group_may_decide(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    await world.click(
        button_click(
            item_id=item_id,
            verb="approve",
            user="U0AGENT2",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    await eventually(lambda: _settled(world, item_id))
    assert [c.params["usergroup"] for c in world.slack.calls_to("usergroups.users.list")] == [
        "S0AGENTS"
    ]


async def test_mentions_in_a_draft_notify_nobody(world: SlackWorld) -> None:
    await post_item(world, body="<!channel> <!here> ping <@U123> see <https://evil.example|bank>")
    [call] = world.slack.calls_to("chat.postMessage")
    posted = json.dumps(call.params)
    for raw in ("<!channel>", "<!here>", "<@U123>", "<https://evil"):
        assert raw not in posted
    assert "&lt;!channel&gt;" in posted


async def test_a_rate_limited_post_is_retried_and_posted_once(world: SlackWorld) -> None:
    world.slack.rate_limit(method="chat.postMessage", times=1, retry_after=1)
    await post_item(world)
    assert [c.status for c in world.slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(world.slack.messages[CHANNEL]) == 1


async def test_long_content_posts_within_block_kit_limits(world: SlackWorld) -> None:
    await post_item(world, body="word " * 2000)  # 10,000 characters
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1,1500 +1,1500 @@\n" + "".join(
        f"-value_{n} = compute_old_thing({n}, factor=0.9)\n"
        f"+value_{n} = compute_new_thing({n}, factor=1.0)\n"
        for n in range(750)
    )
    data = ItemCreate(
        route="support",
        kind="code_change",
        title="Big change",
        confidence=0.5,
        content={"repository": "o/r", "title": "Big", "diff": diff},
    )
    await world.system.service.submit(integrator=world.integrator, data=data)
    calls = world.slack.calls_to("chat.postMessage")
    assert [c.response["ok"] for c in calls] == [True, True]
    last = json.dumps(calls[-1].params["blocks"])
    assert "more characters do not fit in Slack" in last and "/items/itm_" in last


async def test_a_decision_elsewhere_updates_the_slack_card(world: SlackWorld) -> None:
    item_id, _ = await post_item(world)
    await world.system.service.decide(
        item_id=item_id,
        action="reject",
        actor=Actor(surface="web", user_id="ann", name="ann"),
        reason_code="wrong tone",
    )
    [update] = world.slack.calls_to("chat.update")
    blocks = json.dumps(update.params["blocks"])
    assert "Rejected by ann: wrong tone" in blocks and "signoff:approve" not in blocks


async def test_buttons_still_work_after_a_restart(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    await world.system.close()  # the process that posted the card is gone
    fresh = build(
        load_settings(world.settings_env), routes=parse_routes(routes_doc(world.receiver.url))
    )
    app = create_app(fresh, migrate=False, run_worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://signoff"
    ) as http:
        world.http, world.system = http, fresh
        answer = await world.click(
            button_click(
                item_id=item_id,
                verb="approve",
                user="U0LEAD",
                ts=ts,
                trigger_id=world.slack.new_trigger_id(),
            )
        )
        assert answer.status_code == 200
        item = await eventually(lambda: _settled(world, item_id))
    assert item.outcome == "approved"


async def test_socket_mode_click_decides(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    env = {**world.settings_env, "SIGNOFF_SLACK_APP_TOKEN": "xapp-test"}
    env.pop("SIGNOFF_SLACK_SIGNING_SECRET")  # Socket Mode needs no public endpoint
    socket_system = build(load_settings(env), routes=parse_routes(routes_doc(world.receiver.url)))
    assert socket_system.slack is not None
    await socket_system.slack.start()
    try:
        await world.slack.wait_for_socket()
        ack = await world.slack.send_socket_event(
            {
                "type": "interactive",
                "payload": button_click(
                    item_id=item_id,
                    verb="approve",
                    user="U0LEAD",
                    ts=ts,
                    trigger_id=world.slack.new_trigger_id(),
                ),
                "accepts_response_payload": False,
            }
        )
        assert "envelope_id" in ack
        await world.system.close()
        world.system = socket_system  # read through the process that took the click
        item = await eventually(lambda: _settled(world, item_id))

        other_id, other_ts = await post_item_again_with_ts(world)
        await world.slack.send_socket_event(
            {
                "type": "interactive",
                "payload": button_click(
                    item_id=other_id,
                    verb="reject",
                    user="U0LEAD",
                    ts=other_ts,
                    trigger_id=world.slack.new_trigger_id(),
                ),
                "accepts_response_payload": False,
            }
        )
        [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
        await world.slack.send_socket_event(
            {
                "type": "interactive",
                "payload": view_submission(
                    opened.response["view"],
                    user="U0LEAD",
                    values={
                        "reason_code": {
                            "value": {
                                "type": "static_select",
                                "selected_option": {"value": "wrong tone"},
                            }
                        },
                    },
                ),
                "accepts_response_payload": True,
            }
        )
        rejected = await eventually(lambda: _settled(world, other_id))

        third_id, third_ts = await post_item_again_with_ts(world)
        await world.slack.send_socket_event(
            {
                "type": "interactive",
                "payload": button_click(
                    item_id=third_id,
                    verb="edit",
                    user="U0LEAD",
                    ts=third_ts,
                    trigger_id=world.slack.new_trigger_id(),
                ),
                "accepts_response_payload": False,
            }
        )
        edit_view = (await eventually(lambda: world.slack.calls_to("views.open")[1:]))[0]
        await world.slack.send_socket_event(
            {
                "type": "interactive",
                "payload": view_submission(
                    edit_view.response["view"],
                    user="U0LEAD",
                    values={
                        "f_body": {
                            "value": {"type": "plain_text_input", "value": "Edited over a socket"}
                        },
                    },
                ),
                "accepts_response_payload": True,
            }
        )
        edited = await eventually(lambda: _settled(world, third_id))
        await socket_system.worker.run_once()
    finally:
        await socket_system.slack.stop()
        await socket_system.close()
    assert item.outcome == "approved" and item.decisions[-1].actor_id == "U0LEAD"
    assert rejected.outcome == "rejected" and rejected.decisions[-1].reason_code == "wrong tone"
    assert edited.outcome == "edited"
    released = {
        json.loads(r.body)["item"]["id"]: json.loads(r.body)["item"]
        for r in world.receiver.accepted()
        if r.path == "/release"
    }
    assert set(released) == {item_id, third_id}
    assert released[third_id]["final_content"]["body"] == "Edited over a socket"
    callbacks = [
        json.loads(r.body)["item"] for r in world.receiver.accepted() if r.path == "/callback"
    ]
    assert [c["decisions"][-1]["reason_code"] for c in callbacks if c["id"] == other_id] == [
        "wrong tone"
    ]


async def test_slash_command_queue_and_stats(world: SlackWorld) -> None:
    item_id, _ = await post_item(world)
    queue = (await world.command("queue", user="U0LEAD")).text
    assert queue.startswith("*1 waiting for you*") and f"/items/{item_id}|" in queue
    nobody = (await world.command("queue", user="U0INTERN")).text
    assert nobody == "Nothing is waiting for you."
    await world.system.service.decide(
        item_id=item_id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
    )
    await post_item_again(world)
    stats = (await world.command("stats", user="U0LEAD")).text
    assert stats == "*Today in support* (UTC): 1 waiting; 1 approved."
    other = (await world.command("stats", user="U0LEAD", channel="C0ELSE")).text
    assert other == "No route posts to this channel."
    assert "Usage" in (await world.command("", user="U0LEAD")).text


async def post_item_again(world: SlackWorld) -> None:
    data = ItemCreate(route="support", kind="email", title="Another", content=EMAIL, confidence=0.5)
    await world.system.service.submit(integrator=world.integrator, data=data)


async def test_approve_and_reject_at_the_same_moment(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    await world.click(
        button_click(
            item_id=item_id,
            verb="reject",
            user="U0LEAD",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    reject = view_submission(
        opened.response["view"],
        user="U0LEAD",
        values={
            "reason_text": {"value": {"type": "plain_text_input", "value": "no"}},
        },
    )
    approve = button_click(
        item_id=item_id,
        verb="approve",
        user="U0AGENT2",
        ts=ts,
        trigger_id=world.slack.new_trigger_id(),
    )
    answers = await asyncio.gather(world.click(reject), world.click(approve))
    assert [a.status_code for a in answers] == [200, 200]
    [ephemeral] = await eventually(lambda: world.slack.calls_to("chat.postEphemeral"))
    item = await world.system.reader.get(item_id=item_id)
    assert len(item.decisions) == 1 and item.state in ("approved", "rejected")
    winner = item.decisions[0]
    verb = "approved" if winner.action == "approve" else "rejected"
    assert ephemeral.params["text"].startswith(f"Already {verb} by {winner.actor_name} at ")
    assert ephemeral.params["user"] != winner.actor_id


async def test_a_field_too_long_for_a_slack_form_links_to_the_web_editor(
    world: SlackWorld,
) -> None:
    item_id, ts = await post_item(world, body="x" * 3500)
    await world.click(
        button_click(
            item_id=item_id,
            verb="edit",
            user="U0LEAD",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    assert opened.response["ok"] is True
    body = next(b for b in opened.response["view"]["blocks"] if b["block_id"] == "f_body")
    assert body["type"] == "section"
    assert "3,500 characters" in body["text"]["text"]
    assert f"/items/{item_id}|Edit it in the web editor>" in body["text"]["text"]


async def post_item_again_with_ts(world: SlackWorld) -> tuple[str, str]:
    data = ItemCreate(
        route="support",
        kind="email",
        title="Second",
        content=EMAIL,
        confidence=0.5,
        callback_url=f"{world.receiver.url}/callback",
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    return item.id, world.slack.messages[CHANNEL][-1]["ts"]


async def test_a_serving_process_keeps_one_connection_to_slack(world: SlackWorld) -> None:
    """slack_sdk opens a connection (a TLS handshake, against Slack) per call unless it
    is given a session: the served app gives it one for its whole life."""
    app = create_app(world.system, migrate=False, run_worker=False)
    edge = world.system.slack
    assert edge is not None
    async with app.router.lifespan_context(app):
        for n in range(3):
            data = ItemCreate(route="support", kind="email", title=f"Refund {n}", content=EMAIL)
            item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
            await world.system.service.decide(
                item_id=item.id,
                action="approve",
                actor=Actor(surface="slack", user_id="U0LEAD", name="lead"),
            )
        session = edge.client.session
        assert session is not None and not session.closed
    calls = [*world.slack.calls_to("chat.postMessage"), *world.slack.calls_to("chat.update")]
    assert len(calls) == 6 and len({call.peer for call in calls}) == 1
    assert session.closed and edge.client.session is None  # closed with the app
