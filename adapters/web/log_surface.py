"""A stand-in for the web inbox: logs each card so an operator sees what awaits review."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.card import ReviewCard

log = logging.getLogger("signoff.web")


class LogSurface:
    name = "web"

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any]:
        log.info(
            "awaiting review in the web inbox: %s %r (%s)",
            card.item_id,
            card.title,
            card.context_line,
        )
        return {"item_id": card.item_id}

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        log.info("web inbox: %s %s", card.item_id, card.status or "updated")

    async def nudge(
        self, *, card: ReviewCard, ref: Mapping[str, Any], mentions: Sequence[str], text: str
    ) -> None:
        log.info("web inbox reminder for %s: %s", card.item_id, text)
