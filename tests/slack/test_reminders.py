"""Reminders and digests on Slack: the real AsyncWebClient against the Slack emulator."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.surface import ChannelPacer, SlackSurface
from bot.ports import DigestEntry
from tests.cards import sample_card
from tests.fakes.slack import MAX_MESSAGE_TEXT, SlackEmulator

CHANNEL = "C0REVIEW"
WEB = "http://signoff.test"
KEY = "itm_1:step0:post3"
TEXT = "Still waiting for review after 4 h."


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def surface(slack: SlackEmulator) -> SlackSurface:
    # interval=0: nothing waits for the pacer, so no test sleeps.
    client = AsyncWebClient(token="xoxb-test", base_url=slack.url)
    return SlackSurface(client=client, web_url=WEB, pacer=ChannelPacer(interval=0))


async def post_card(surface: SlackSurface) -> dict[str, Any]:
    ref = await surface.post(card=sample_card(), channel=CHANNEL)
    assert ref is not None
    return dict(ref)


def replies(slack: SlackEmulator, ref: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in slack.messages[CHANNEL] if m["thread_ts"] == ref["ts"]]


def entry(n: int, *, title: str | None = None) -> DigestEntry:
    return DigestEntry(
        item_id=f"itm_{n}",
        title=title if title is not None else f"Refund {n}",
        url=f"{WEB}/items/itm_{n}",
        note=f"waiting {n} h",
    )


async def test_a_nudge_replies_in_the_thread_with_mentions_and_its_key(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    ref = await post_card(surface)
    await surface.nudge(
        card=sample_card(), ref=ref, mentions=["U1", "S1"], text="Look <now> & soon", key=KEY
    )

    [reply] = replies(slack, ref)
    assert reply["text"] == "<@U1> <!subteam^S1> Look &lt;now&gt; &amp; soon"
    assert reply["metadata"] == {"event_type": "signoff_reminder", "event_payload": {"key": KEY}}
    assert slack.calls_to("conversations.replies") == []  # no check unless asked


async def test_check_first_sends_nothing_when_the_reminder_is_already_there(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    ref = await post_card(surface)
    await surface.nudge(card=sample_card(), ref=ref, mentions=["U1"], text=TEXT, key=KEY)
    await surface.nudge(
        card=sample_card(), ref=ref, mentions=["U1"], text=TEXT, key=KEY, check_first=True
    )

    assert len(replies(slack, ref)) == 1
    [check] = slack.calls_to("conversations.replies")
    assert (check.params["channel"], check.params["ts"]) == (CHANNEL, ref["ts"])
    assert check.params["include_all_metadata"] in (True, "1", "true")


async def test_check_first_sends_the_reminder_when_it_is_not_there(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    ref = await post_card(surface)
    # An earlier step's reminder, with another key, is in the thread.
    await surface.nudge(card=sample_card(), ref=ref, mentions=["U1"], text=TEXT, key="other")
    await surface.nudge(
        card=sample_card(), ref=ref, mentions=["U1"], text=TEXT, key=KEY, check_first=True
    )

    keys = [m["metadata"]["event_payload"]["key"] for m in replies(slack, ref)]
    assert keys == ["other", KEY]
    assert len(slack.calls_to("conversations.replies")) == 1


async def test_check_first_reads_every_page_of_a_long_thread(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    ref = await post_card(surface)
    client = AsyncWebClient(token="xoxb-test", base_url=slack.url)
    for n in range(250):  # more than one page of replies before the reminder
        await client.chat_postMessage(channel=CHANNEL, thread_ts=ref["ts"], text=f"chat {n}")
    await surface.nudge(card=sample_card(), ref=ref, mentions=[], text=TEXT, key=KEY)
    await surface.nudge(
        card=sample_card(), ref=ref, mentions=[], text=TEXT, key=KEY, check_first=True
    )

    assert sum(1 for m in replies(slack, ref) if m.get("metadata")) == 1
    checks = slack.calls_to("conversations.replies")
    assert len(checks) == 2 and checks[1].params["cursor"]


async def test_when_the_check_fails_the_reminder_is_sent_anyway(
    slack: SlackEmulator, surface: SlackSurface, caplog: pytest.LogCaptureFixture
) -> None:
    ref = await post_card(surface)
    slack.fail("conversations.replies", "internal_error")
    with caplog.at_level(logging.WARNING, logger="signoff.slack"):
        await surface.nudge(
            card=sample_card(), ref=ref, mentions=["U1"], text=TEXT, key=KEY, check_first=True
        )

    [reply] = replies(slack, ref)
    assert reply["metadata"]["event_payload"]["key"] == KEY
    assert "could not check the thread" in caplog.text and "internal_error" in caplog.text


async def test_announce_lists_twenty_items_in_one_message_in_the_given_order(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    entries = [entry(n) for n in range(20)]
    await surface.announce(
        channel=CHANNEL,
        mentions=["U1", "S1"],
        heading="20 items in support are waiting for review (oldest first):",
        entries=entries,
    )

    [message] = slack.messages[CHANNEL]
    assert message["thread_ts"] is None
    lines = message["text"].split("\n")
    assert lines[0] == (
        "<@U1> <!subteam^S1> 20 items in support are waiting for review (oldest first):"
    )
    assert lines[1:] == [f"• <{WEB}/items/itm_{n}|Refund {n}> · waiting {n} h" for n in range(20)]
    assert (message["unfurl_links"], message["unfurl_media"]) == (False, False)


async def test_announce_of_very_many_long_entries_stays_within_slacks_limit(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    entries = [entry(n, title=f"{n} " + "long title " * 40) for n in range(2000)]
    await surface.announce(channel=CHANNEL, mentions=[], heading="Daily digest:", entries=entries)

    [call] = slack.calls_to("chat.postMessage")
    assert call.response["ok"] is True
    [message] = slack.messages[CHANNEL]
    text = message["text"]
    assert len(text) <= MAX_MESSAGE_TEXT
    listed = [line for line in text.split("\n") if line.startswith("• ")]
    more = re.fullmatch(r"… and (\d+) more", text.split("\n")[-1])
    assert more is not None
    assert 0 < len(listed) < 2000 and len(listed) + int(more[1]) == 2000
    # The first ones (the oldest) are the ones listed, each title clipped.
    numbers = [line.split("|", 1)[1].split(" ", 1)[0] for line in listed]
    assert numbers == [str(n) for n in range(len(listed))]
    assert all(len(line) < 300 for line in listed)


async def test_announce_escapes_titles(slack: SlackEmulator, surface: SlackSurface) -> None:
    await surface.announce(
        channel=CHANNEL,
        mentions=[],
        heading="Waiting:",
        entries=[entry(1, title="<script>& <!channel> <https://evil|bank>")],
    )

    [message] = slack.messages[CHANNEL]
    line = message["text"].split("\n")[1]
    assert line == (
        f"• <{WEB}/items/itm_1|&lt;script&gt;&amp; &lt;!channel&gt; &lt;https://evil|bank&gt;>"
        " · waiting 1 h"
    )
    assert "<script>" not in message["text"] and "<!channel>" not in message["text"]


async def test_announce_without_a_channel_posts_nothing(
    slack: SlackEmulator, surface: SlackSurface
) -> None:
    await surface.announce(channel=None, mentions=["U1"], heading="Waiting:", entries=[entry(1)])
    assert slack.calls == []
