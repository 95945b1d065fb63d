"""Posting is paced per channel by waiting, never by dropping (no real sleeping)."""

from __future__ import annotations

import asyncio

from adapters.slack.surface import ChannelPacer


async def test_posts_to_one_channel_wait_their_turn() -> None:
    clock = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = ChannelPacer(interval=1.0, now=lambda: clock[0], sleep=sleep)
    sent: list[str] = []

    async def send(tag: str) -> str:
        sent.append(tag)
        return tag

    results = await asyncio.gather(
        *(pacer.turn("C1", lambda t=t: send(t)) for t in ("a", "b", "c")),
        pacer.turn("C2", lambda: send("other")),
    )
    assert results == ["a", "b", "c", "other"]
    assert sorted(sent) == ["a", "b", "c", "other"]  # nothing dropped
    assert slept == [1.0, 1.0]  # C1's second and third wait; C2 never waits
