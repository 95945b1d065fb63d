"""The web inbox as a surface: cards are rendered from the item itself, so there is no
message to remember; posting and updating only tell open pages to refresh. (Every item
change also reaches open pages through the notifier, see ``bot.app``.)"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.web.live import Broadcaster
from bot.card import ReviewCard
from bot.ports import DigestEntry

log = logging.getLogger("signoff.web")


class WebSurface:
    name = "web"

    def __init__(self, *, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any] | None:
        self._broadcaster.publish(card.item_id)
        return None

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        self._broadcaster.publish(card.item_id)

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
        # The inbox lists every pending item anyway; the reminder shows in its history.
        log.info("web inbox reminder for %s to %s: %s", card.item_id, ", ".join(mentions), text)
        self._broadcaster.publish(card.item_id)

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[DigestEntry],
    ) -> None:
        log.info("web inbox digest: %s %d items", heading, len(entries))
