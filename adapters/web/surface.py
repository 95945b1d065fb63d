"""The web inbox as a surface: cards live in the database; posting and updating only
tell open pages to refresh."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.web.live import Broadcaster
from bot.card import ReviewCard

log = logging.getLogger("signoff.web")


class WebSurface:
    name = "web"

    def __init__(self, *, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any]:
        self._broadcaster.publish(card.item_id)
        return {"item_id": card.item_id}

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        self._broadcaster.publish(card.item_id)

    async def nudge(
        self, *, card: ReviewCard, ref: Mapping[str, Any], mentions: Sequence[str], text: str
    ) -> None:
        log.info("web inbox reminder for %s to %s: %s", card.item_id, ", ".join(mentions), text)
        self._broadcaster.publish(card.item_id)
