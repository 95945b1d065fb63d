"""A sample review card for the surfaces' rendering tests."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.card import CardField, ReviewCard


def sample_card(**overrides: object) -> ReviewCard:
    base: dict[str, object] = {
        "item_id": "itm_1",
        "kind": "email",
        "title": "Refund",
        "route": "support",
        "confidence": 0.82,
        "requested_by": "sam",
        "due": datetime(2026, 1, 5, 10, tzinfo=UTC),
        "fields": (CardField("To", "jane@example.com"), CardField("Subject", "Your refund")),
        "body": "Hi Jane",
    }
    return ReviewCard(**{**base, **overrides})  # type: ignore[arg-type]
