"""A surface that records what the core asks of it, for tests of the core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.card import ReviewCard
from bot.ports import DigestEntry


@dataclass(frozen=True)
class Nudge:
    card: ReviewCard
    ref: Mapping[str, Any]
    mentions: Sequence[str]
    text: str
    key: str
    check_first: bool


@dataclass(frozen=True)
class Announcement:
    channel: str | None
    mentions: Sequence[str]
    heading: str
    entries: Sequence[DigestEntry]


@dataclass
class RecordingSurface:
    name: str = "web"
    posts: list[tuple[ReviewCard, str | None]] = field(default_factory=list)
    updates: list[tuple[ReviewCard, Mapping[str, Any]]] = field(default_factory=list)
    nudges: list[Nudge] = field(default_factory=list)
    announcements: list[Announcement] = field(default_factory=list)
    fail_posts: bool = False
    fail_nudges: bool = False
    remembers: bool = True  # False: like the web inbox, nothing to remember per card

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any] | None:
        if self.fail_posts:
            raise ConnectionError("surface is down")
        self.posts.append((card, channel))
        return {"n": len(self.posts), "channel": channel} if self.remembers else None

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        self.updates.append((card, ref))

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
        if self.fail_nudges:
            raise ConnectionError("surface is down")
        self.nudges.append(Nudge(card, ref, list(mentions), text, key, check_first))

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[DigestEntry],
    ) -> None:
        self.announcements.append(Announcement(channel, list(mentions), heading, list(entries)))
