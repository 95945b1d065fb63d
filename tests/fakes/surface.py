"""A surface that records what the core asks of it, for tests of the core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.card import ReviewCard


@dataclass
class RecordingSurface:
    name: str = "web"
    posts: list[tuple[ReviewCard, str | None]] = field(default_factory=list)
    updates: list[tuple[ReviewCard, Mapping[str, Any]]] = field(default_factory=list)
    nudges: list[tuple[ReviewCard, Sequence[str], str]] = field(default_factory=list)
    fail_posts: bool = False

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any]:
        if self.fail_posts:
            raise ConnectionError("surface is down")
        self.posts.append((card, channel))
        return {"n": len(self.posts), "channel": channel}

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        self.updates.append((card, ref))

    async def nudge(
        self, *, card: ReviewCard, ref: Mapping[str, Any], mentions: Sequence[str], text: str
    ) -> None:
        self.nudges.append((card, mentions, text))
