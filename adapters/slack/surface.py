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

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import card_blocks, diff_reply, escape, fallback_text
from bot.card import ReviewCard
from bot.ports import DigestEntry
from bot.present import fit_lines

log = logging.getLogger("signoff.slack")

REMINDER_EVENT = "signoff_reminder"
"""The message metadata ``event_type`` of a reminder; its payload holds the ``key``."""
EDIT_EVENT = "signoff_edit_diff"
"""The metadata ``event_type`` of the "what the reviewer changed" reply (key: item id)."""
MAX_DIGEST_TEXT = 39_000  # Slack's limit for a message's text is 40,000 characters
MAX_DIGEST_TITLE = 150  # characters of a title (or note) in a digest line, before escaping


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
        blocks = card_blocks(card, web_url=self._web_url + card.web_path)

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
            blocks=card_blocks(card, web_url=self._web_url + card.web_path),
        )
        if card.edit_diff and not card.actions:  # settled with an edit: show what changed
            channel = ref["channel"]
            blocks = diff_reply(card.edit_diff, web_url=self._item_url(card.item_id))

            async def send() -> Any:
                # The card is refreshed again later (release done, retried): one diff only.
                if await self._already_replied(
                    channel, str(ref["ts"]), card.item_id, event_type=EDIT_EVENT
                ):
                    return None
                return await self._client.chat_postMessage(
                    channel=channel,
                    thread_ts=ref["ts"],
                    text="What the reviewer changed",
                    blocks=blocks,
                    metadata={"event_type": EDIT_EVENT, "event_payload": {"key": card.item_id}},
                )

            # In the background: waiting for the channel's turn must not hold up the
            # decision (a modal has 3 seconds to be acknowledged).
            task = asyncio.create_task(self._pacer.turn(channel, send))
            self._background.add(task)
            task.add_done_callback(self._finished)

    async def drain(self) -> None:
        """Wait for posts still running in the background (on shutdown, and in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack: posting an edit diff failed: %s", task.exception())

    async def nudge(
        self,
        *,
        card: ReviewCard,
        ref: Mapping[str, Any],
        mentions: Sequence[str],
        text: str,
        key: str,
        check_first: bool = False,
    ) -> None:
        """A reply in the card's thread, tagged with ``key`` in its message metadata.

        With ``check_first`` the thread is read first and a reply already carrying ``key``
        means an earlier attempt got through: nothing is sent. When that check fails the
        reminder is sent anyway; a duplicate is better than a lost reminder.
        """
        channel, thread_ts = str(ref["channel"]), str(ref["ts"])
        if check_first and await self._already_replied(channel, thread_ts, key):
            log.info("slack: reminder %s is already in the thread; not sent again", key)
            return
        # Mentions come from the route file (ids), never from a draft: not escaped.
        who = " ".join(_mention(m) for m in dict.fromkeys(mentions))

        async def send() -> Any:
            return await self._client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=f"{who} {escape(text)}".strip(),
                metadata={"event_type": REMINDER_EVENT, "event_payload": {"key": key}},
            )

        await self._pacer.turn(channel, send)

    async def _already_replied(
        self, channel: str, thread_ts: str, key: str, *, event_type: str = REMINDER_EVENT
    ) -> bool:
        """Whether a reply in the thread carries ``key`` for ``event_type`` (False if
        unsure)."""
        cursor: str | None = None
        try:
            while True:
                page = await self._client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for message in page.get("messages") or []:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if metadata.get("event_type") == event_type and payload.get("key") == key:
                        return True
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return False
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "slack: could not check the thread %s/%s for reminder %s (%s); sending it",
                channel,
                thread_ts,
                key,
                exc,
            )
            return False

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[DigestEntry],
    ) -> None:
        """One message (not threaded) listing ``entries`` as links, as many as fit."""
        if not channel:
            return
        who = " ".join(_mention(m) for m in dict.fromkeys(mentions))
        head = f"{who} {escape(heading)}".strip()
        lines = [
            f"• <{_link_target(e.url)}|{_escaped_clip(e.title, MAX_DIGEST_TITLE)}>"
            + (f" · {_escaped_clip(e.note, MAX_DIGEST_TITLE)}" if e.note else "")
            for e in entries
        ]
        text = fit_lines(head, lines, limit=MAX_DIGEST_TEXT)

        async def send() -> Any:
            return await self._client.chat_postMessage(
                channel=channel, text=text, unfurl_links=False, unfurl_media=False
            )

        await self._pacer.turn(channel, send)


def _escaped_clip(text: str, limit: int) -> str:
    """One line of draft text, clipped to ``limit`` characters and then escaped (so an
    entity is never cut in half)."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return escape(flat)


def _link_target(url: str) -> str:
    """A URL inside ``<…|…>``: entities for ``&<>``, and no ``|`` to end it early."""
    return escape(url).replace("|", "%7C")


def _mention(slack_id: str) -> str:
    """A user (U…/W…) or user-group (S…) id as a mention."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"
