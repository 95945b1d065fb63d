"""Slack as a surface: cards posted and updated in place with slack_sdk's AsyncWebClient.

Posting is paced to about one message per second per channel (Slack's guidance) by
waiting in line, never by dropping; 429 answers are retried after ``Retry-After`` by
slack_sdk's retry handler, which the composition root installs on the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import card_blocks, diff_reply, escape, fallback_text
from bot.card import ReviewCard

log = logging.getLogger("signoff.slack")


class ChannelPacer:
    """Spaces posts to one channel ``interval`` seconds apart; other channels go on."""

    def __init__(
        self,
        *,
        interval: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._now = now
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    async def turn(self, channel: str, send: Callable[[], Awaitable[Any]]) -> Any:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            wait = self._last.get(channel, -self._interval) + self._interval - self._now()
            if wait > 0:
                await self._sleep(wait)
            try:
                return await send()
            finally:
                self._last[channel] = self._now()


class SlackSurface:
    name = "slack"

    def __init__(self, *, client: AsyncWebClient, web_url: str, pacer: ChannelPacer) -> None:
        self._client = client
        self._web_url = web_url.rstrip("/")
        self._pacer = pacer
        self._background: set[asyncio.Task[Any]] = set()

    def _item_url(self, item_id: str) -> str:
        return f"{self._web_url}/items/{item_id}"

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any] | None:
        if not channel:
            raise ValueError("a Slack surface needs a channel")
        blocks = card_blocks(card, web_url=self._item_url(card.item_id))

        async def send() -> Any:
            return await self._client.chat_postMessage(
                channel=channel,
                text=fallback_text(card),
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )

        answer = await self._pacer.turn(channel, send)
        return {"channel": answer["channel"], "ts": answer["ts"]}

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        await self._client.chat_update(
            channel=ref["channel"],
            ts=ref["ts"],
            text=fallback_text(card),
            blocks=card_blocks(card, web_url=self._item_url(card.item_id)),
        )
        if card.edit_diff and not card.actions:  # settled with an edit: show what changed
            channel = ref["channel"]
            blocks = diff_reply(card.edit_diff, web_url=self._item_url(card.item_id))

            async def send() -> Any:
                return await self._client.chat_postMessage(
                    channel=channel,
                    thread_ts=ref["ts"],
                    text="What the reviewer changed",
                    blocks=blocks,
                )

            # In the background: waiting for the channel's turn must not hold up the
            # decision (a modal has 3 seconds to be acknowledged).
            task = asyncio.create_task(self._pacer.turn(channel, send))
            self._background.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack: posting an edit diff failed: %s", task.exception())

    async def nudge(
        self, *, card: ReviewCard, ref: Mapping[str, Any], mentions: Sequence[str], text: str
    ) -> None:
        # Mentions come from the route file (ids), never from a draft: not escaped.
        who = " ".join(_mention(m) for m in mentions)
        channel = ref["channel"]

        async def send() -> Any:
            return await self._client.chat_postMessage(
                channel=channel, thread_ts=ref["ts"], text=f"{who} {escape(text)}".strip()
            )

        await self._pacer.turn(channel, send)


def _mention(slack_id: str) -> str:
    """A user (U…/W…) or user-group (S…) id as a mention."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"
