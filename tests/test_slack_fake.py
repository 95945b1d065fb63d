"""The Slack emulator, driven by the real slack_sdk clients (AsyncWebClient, SocketModeClient)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import SlackEmulator

# slack_sdk picks proxies up from the environment; the emulator is on loopback.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slack"  # copied from shared/
CHANNEL = "C0REVIEW"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = await SlackEmulator().start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.url)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def error_of(call: Any) -> dict[str, Any]:
    """The body of the Slack error a client call raises."""
    with pytest.raises(SlackApiError) as caught:
        await call
    data: dict[str, Any] = caught.value.response.data
    return data


class Clock:
    """An injectable monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_auth_test_answers_the_bot_identity_and_records_the_bearer_token(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    response = await client.auth_test()
    assert response["ok"] is True
    assert (response["user_id"], response["bot_id"], response["team_id"]) == (
        slack.bot_user_id,
        slack.bot_id,
        slack.team_id,
    )
    assert response["url"].startswith("https://")
    [call] = slack.calls_to("auth.test")
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert (call.token, call.status) == ("xoxb-test", 200)


async def test_tokens_are_checked_like_slack(slack: SlackEmulator) -> None:
    nobody = AsyncWebClient(base_url=slack.url)
    assert (await error_of(nobody.auth_test()))["error"] == "not_authed"
    app_level = AsyncWebClient(token="xapp-test", base_url=slack.url)
    posting = app_level.chat_postMessage(channel=CHANNEL, text="hi")
    assert (await error_of(posting))["error"] == "not_allowed_token_type"
    bot = AsyncWebClient(token="xoxb-test", base_url=slack.url)
    opening = bot.apps_connections_open(app_token="xoxb-test")
    assert (await error_of(opening))["error"] == "not_allowed_token_type"
    slack.valid_tokens = {"xoxb-right"}
    assert (await error_of(bot.auth_test()))["error"] == "invalid_auth"


async def test_post_then_update_a_message(slack: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(
        channel=CHANNEL, text="Review: refund", blocks=[section("*Refund*")], unfurl_links=False
    )
    ts = posted["ts"]
    assert posted["channel"] == CHANNEL
    assert posted["message"]["ts"] == ts and posted["message"]["text"] == "Review: refund"
    [stored] = slack.messages[CHANNEL]
    assert stored["blocks"] == [section("*Refund*")] and stored["thread_ts"] is None
    assert stored["unfurl_links"] is False
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == [section("*Refund*")]

    reply = await client.chat_postMessage(channel=CHANNEL, text="nudge", thread_ts=ts)
    assert float(reply["ts"]) > float(ts)
    assert slack.messages[CHANNEL][1]["thread_ts"] == ts

    updated = await client.chat_update(
        channel=CHANNEL, ts=ts, text="Approved", blocks=[section("*Approved*")]
    )
    assert (updated["ts"], updated["text"]) == (ts, "Approved")
    message = slack.message(CHANNEL, ts)
    assert message is not None
    assert message["text"] == "Approved" and message["blocks"] == [section("*Approved*")]
    assert message["reply_count"] == 1

    missing = client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert (await error_of(missing))["error"] == "message_not_found"


async def test_form_encoded_bodies_carry_blocks_as_a_json_string(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    blocks = [section("from a form")]
    response = await client.api_call(
        "chat.postMessage",
        data={"channel": CHANNEL, "text": "form", "blocks": json.dumps(blocks)},
    )
    assert response["ok"] is True
    [call] = slack.calls_to("chat.postMessage")
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert call.params["blocks"] == blocks
    assert slack.messages[CHANNEL][0]["blocks"] == blocks


async def test_post_ephemeral_answers_a_message_ts(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    response = await client.chat_postEphemeral(channel=CHANNEL, user="U1", text="only you")
    assert response["message_ts"]
    assert slack.ephemerals[0]["user"] == "U1"
    assert CHANNEL not in slack.messages


async def test_too_many_blocks_are_invalid_blocks(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="fifty", blocks=[section("x")] * 50)
    posting = client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x")] * 51)
    body = await error_of(posting)
    assert body["error"] == "invalid_blocks"
    assert body["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]
    assert len(slack.messages[CHANNEL]) == 1


async def test_a_section_over_3000_characters_is_invalid_blocks(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x" * 3000)])
    body = await error_of(
        client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x" * 3001)])
    )
    assert body["error"] == "invalid_blocks"
    assert body["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert body["response_metadata"]["messages"] == [f"[ERROR] {body['errors'][0]}"]
    assert len(slack.messages[CHANNEL]) == 1


def button(text: str = "Approve", action_id: str = "approve") -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
    }


@pytest.mark.parametrize(
    ("block", "pointer"),
    [
        (
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            "/blocks/0/text/text",
        ),
        (
            {"type": "actions", "elements": [button(text="b" * 76)]},
            "/blocks/0/elements/0/text/text",
        ),
        (
            {"type": "actions", "elements": [button(action_id="a" * 256)]},
            "/blocks/0/elements/0/action_id",
        ),
        ({**section("x"), "block_id": "b" * 256}, "/blocks/0/block_id"),
        ({**section("x"), "accessory": button(text="b" * 76)}, "/blocks/0/accessory/text/text"),
        (
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Body"},
                "element": {"type": "plain_text_input", "initial_value": "v" * 3001},
            },
            "/blocks/0/element/initial_value",
        ),
        (
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
            "/blocks/0/fields",
        ),
        (
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]},
            "/blocks/0/fields/0/text",
        ),
    ],
)
async def test_block_kit_limits(
    slack: SlackEmulator, client: AsyncWebClient, block: dict[str, Any], pointer: str
) -> None:
    body = await error_of(client.chat_postMessage(channel=CHANNEL, text="t", blocks=[block]))
    assert body["error"] == "invalid_blocks"
    assert [e.rsplit("[json-pointer:", 1)[1].rstrip("]") for e in body["errors"]] == [pointer]
    assert CHANNEL not in slack.messages


async def test_text_over_40000_characters_is_msg_too_long(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    body = await error_of(client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))
    assert body["error"] == "msg_too_long"
    assert CHANNEL not in slack.messages
    empty = client.api_call("chat.postMessage", json={"channel": CHANNEL})
    assert (await error_of(empty))["error"] == "no_text"


def modal(blocks: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "edit",
        "title": {"type": "plain_text", "text": "Edit"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": blocks if blocks is not None else [section("draft")],
        **extra,
    }


async def test_trigger_ids_expire_after_three_seconds_on_the_injected_clock(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    clock = Clock()
    slack.now = clock
    fresh, stale = slack.new_trigger_id(), slack.new_trigger_id()

    clock.t += 2.9
    opened = await client.views_open(trigger_id=fresh, view=modal())
    assert opened["view"]["id"] in slack.views
    assert opened["view"]["callback_id"] == "edit"
    again = await error_of(client.views_open(trigger_id=fresh, view=modal()))
    assert again["error"] == "exchanged_trigger_id"

    clock.t += 0.1
    assert (await error_of(client.views_open(trigger_id=stale, view=modal())))[
        "error"
    ] == "expired_trigger_id"
    unknown = await error_of(client.views_open(trigger_id="1.2.abc", view=modal()))
    assert unknown["error"] == "invalid_trigger_id"


async def test_views_update_by_id_or_external_id_and_modal_limits(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    opened = await client.views_open(
        trigger_id=slack.new_trigger_id(), view=modal(external_id="itm_1")
    )
    view_id = opened["view"]["id"]
    by_id = await client.views_update(view_id=view_id, view=modal([section("v2")]))
    assert by_id["view"]["id"] == view_id and by_id["view"]["blocks"] == [section("v2")]
    by_external = await client.views_update(external_id="itm_1", view=modal([section("v3")]))
    assert slack.views[view_id]["blocks"] == [section("v3")] == by_external["view"]["blocks"]
    stale_hash = await error_of(
        client.views_update(view_id=view_id, view=modal(), hash=opened["view"]["hash"])
    )
    assert stale_hash["error"] == "hash_conflict"
    nowhere = await error_of(client.views_update(view_id="V404", view=modal()))
    assert nowhere["error"] == "not_found"

    await client.views_open(trigger_id=slack.new_trigger_id(), view=modal([section("x")] * 100))
    too_many = await error_of(
        client.views_open(trigger_id=slack.new_trigger_id(), view=modal([section("x")] * 101))
    )
    assert too_many["error"] == "invalid_arguments"
    assert too_many["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]


async def test_usergroup_members(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.usergroups = {"S02": ["U1", "U2"]}
    response = await client.usergroups_users_list(usergroup="S02")
    assert response["users"] == ["U1", "U2"]
    assert slack.calls_to("usergroups.users.list")[0].http_verb == "GET"
    unknown = await error_of(client.usergroups_users_list(usergroup="S404"))
    assert unknown["error"] == "no_such_subteam"


async def test_a_429_is_retried_after_retry_after_and_the_message_stored_once(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    slack.rate_limit(method="chat.postMessage", times=1, retry_after=1)
    response = await client.chat_postMessage(channel=CHANNEL, text="once")
    assert response["ok"] is True
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["once"]


async def test_a_429_without_a_retry_handler_raises_and_stores_nothing(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.rate_limit(method="chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="lost")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"
    assert CHANNEL not in slack.messages


async def test_scripted_failures(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.fail("chat.update", "cant_update_message")
    posted = await client.chat_postMessage(channel=CHANNEL, text="t")
    failing = client.chat_update(channel=CHANNEL, ts=posted["ts"], text="u")
    assert (await error_of(failing))["error"] == "cant_update_message"
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="u")


async def socket_client(slack: SlackEmulator, acks: list[str]) -> SocketModeClient:
    """A connected SocketModeClient whose listener acks every request."""
    client = SocketModeClient(app_token="xapp-test", web_client=AsyncWebClient(base_url=slack.url))

    async def ack(client: SocketModeClient, request: SocketModeRequest) -> None:
        acks.append(request.type)
        payload = {"response_action": "clear"} if request.accepts_response_payload else None
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload)
        )

    client.socket_mode_request_listeners.append(ack)  # type: ignore[arg-type]
    await client.connect()
    return client


async def test_socket_mode_delivers_an_envelope_and_returns_the_ack(
    slack: SlackEmulator,
) -> None:
    acks: list[str] = []
    client = await socket_client(slack, acks)
    try:
        await slack.wait_for_socket()
        [opened] = slack.calls_to("apps.connections.open")
        assert opened.token == "xapp-test"
        assert opened.response["url"].startswith(slack.socket_url)

        shortcut = json.loads(
            (FIXTURES / "socket_mode_envelope_interactive_shortcut.json").read_text()
        )
        ack = await slack.send_socket_event(shortcut)
        assert ack == {"envelope_id": shortcut["envelope_id"]}

        submit = {
            "type": "interactive",
            "payload": {"type": "view_submission", "view": {"callback_id": "edit"}},
            "accepts_response_payload": True,
        }
        ack = await slack.send_socket_event(submit)
        assert ack["payload"] == {"response_action": "clear"}
        assert ack["envelope_id"] == slack.socket_sent[-1]["envelope_id"]
        assert acks == ["interactive", "interactive"]
        assert slack.socket_received[0] == {"envelope_id": shortcut["envelope_id"]}
    finally:
        await client.close()


async def test_socket_mode_reconnects_when_asked_to(slack: SlackEmulator) -> None:
    acks: list[str] = []
    client = await socket_client(slack, acks)
    try:
        await slack.wait_for_socket()
        await slack.disconnect_socket()
        await slack.wait_for_socket(connections=2, exactly_open=1)
        assert len(slack.calls_to("apps.connections.open")) == 2
        ack = await slack.send_socket_event({"type": "events_api", "payload": {"event": {}}})
        assert ack["envelope_id"] == slack.socket_sent[-1]["envelope_id"]
        assert slack.socket_sent[-1]["retry_attempt"] == 0
    finally:
        await client.close()


async def test_an_envelope_nobody_acks_times_out(slack: SlackEmulator) -> None:
    with pytest.raises(TimeoutError):
        await slack.send_socket_event({"type": "slash_commands", "payload": {}}, within=0.1)


REMINDER = {"event_type": "signoff_reminder", "event_payload": {"key": "itm_1:step0:post1"}}


async def test_conversations_replies_lists_the_parent_then_replies_oldest_first(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    parent = (await client.chat_postMessage(channel=CHANNEL, text="card"))["ts"]
    await client.chat_postMessage(channel=CHANNEL, text="elsewhere")
    first = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=parent, text="first", metadata=REMINDER
    )
    await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="second")

    thread = await client.conversations_replies(channel=CHANNEL, ts=parent)
    assert [m["text"] for m in thread["messages"]] == ["card", "first", "second"]
    assert {m["thread_ts"] for m in thread["messages"]} == {parent}
    assert thread["has_more"] is False
    assert thread["response_metadata"] == {"next_cursor": ""}
    assert all("metadata" not in m for m in thread["messages"])  # not asked for
    assert slack.calls_to("conversations.replies")[0].http_verb == "GET"

    with_metadata = await client.conversations_replies(
        channel=CHANNEL, ts=parent, include_all_metadata=True
    )
    assert with_metadata["messages"][1]["metadata"] == REMINDER
    assert "metadata" not in with_metadata["messages"][2]

    # A reply's ts stands for its whole thread.
    by_reply = await client.conversations_replies(channel=CHANNEL, ts=first["ts"])
    assert [m["text"] for m in by_reply["messages"]] == ["card", "first", "second"]
    # A message without replies is a thread of one.
    lonely = slack.messages[CHANNEL][1]["ts"]
    alone = await client.conversations_replies(channel=CHANNEL, ts=lonely)
    assert [m["text"] for m in alone["messages"]] == ["elsewhere"]
    assert "thread_ts" not in alone["messages"][0]


async def test_conversations_replies_pages_with_a_cursor(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    parent = (await client.chat_postMessage(channel=CHANNEL, text="card"))["ts"]
    for n in range(5):
        await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text=f"r{n}")

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await client.conversations_replies(
            channel=CHANNEL, ts=parent, limit=2, cursor=cursor
        )
        pages += 1
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
    assert seen == ["card", "r0", "r1", "r2", "r3", "r4"]  # the parent on the first page
    assert pages == 3
    bad = client.conversations_replies(channel=CHANNEL, ts=parent, cursor="not-a-cursor")
    assert (await error_of(bad))["error"] == "invalid_cursor"


async def test_conversations_replies_of_a_missing_thread(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    missing = client.conversations_replies(channel=CHANNEL, ts="1700000000.000001")
    assert (await error_of(missing))["error"] == "thread_not_found"
    no_ts = client.api_call("conversations.replies", http_verb="GET", params={"channel": CHANNEL})
    assert (await error_of(no_ts))["error"] == "invalid_arguments"


async def test_message_metadata_must_have_an_event_type_and_a_payload(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    for metadata in (
        {"event_payload": {"key": "k"}},
        {"event_type": "has spaces", "event_payload": {}},
        {"event_type": "signoff_reminder", "event_payload": "k"},
    ):
        posting = client.chat_postMessage(channel=CHANNEL, text="t", metadata=metadata)
        assert (await error_of(posting))["error"] == "invalid_metadata_format"
    assert CHANNEL not in slack.messages
    posted = await client.chat_postMessage(channel=CHANNEL, text="t", metadata=REMINDER)
    assert posted["message"]["metadata"] == REMINDER
    assert slack.messages[CHANNEL][0]["metadata"] == REMINDER


async def test_a_held_post_is_stored_first_and_answered_on_release(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    gate = slack.hold("chat.postMessage")
    posting = asyncio.create_task(client.chat_postMessage(channel=CHANNEL, text="in flight"))
    await slack.wait_held("chat.postMessage")

    # Slack has posted the message and recorded the call, but not answered yet.
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["in flight"]
    assert [c.response["ok"] for c in slack.calls_to("chat.postMessage")] == [True]
    assert slack.held("chat.postMessage") == 1
    assert not posting.done()

    gate.set()
    answer = await posting
    assert answer["ts"] == slack.messages[CHANNEL][0]["ts"]
    assert slack.held("chat.postMessage") == 0
    # With the gate open, later calls pass straight through.
    await client.chat_postMessage(channel=CHANNEL, text="after")
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["in flight", "after"]


async def test_a_client_that_dies_while_held_leaves_its_message_posted(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.hold("chat.postMessage")
    posting = asyncio.create_task(client.chat_postMessage(channel=CHANNEL, text="lost answer"))
    await slack.wait_held("chat.postMessage")
    posting.cancel()  # the client goes away without its answer
    with contextlib.suppress(asyncio.CancelledError):
        await posting
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["lost answer"]

    slack.release("chat.postMessage")
    fresh = AsyncWebClient(token="xoxb-test", base_url=slack.url)
    await fresh.chat_postMessage(channel=CHANNEL, text="next run")
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["lost answer", "next run"]


async def test_stop_lets_held_answers_go() -> None:
    emulator = await SlackEmulator().start()
    client = AsyncWebClient(token="xoxb-test", base_url=emulator.url)
    emulator.hold("chat.postMessage")
    posting = asyncio.create_task(client.chat_postMessage(channel=CHANNEL, text="held"))
    await emulator.wait_held("chat.postMessage")
    await asyncio.wait_for(emulator.stop(), 5)
    answer = await asyncio.wait_for(posting, 5)
    assert answer["ok"] is True and emulator.held("chat.postMessage") == 0
