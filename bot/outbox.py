"""What to deliver when an item is settled: the release and the decision callback.

Both rows are written in the same transaction as the deciding update (DESIGN §6).
"""

from __future__ import annotations

from datetime import datetime

from bot.routes import Route, WebhookTarget
from bot.schemas import ItemPublic
from storage.models import Delivery

RELEASE = "release"
CALLBACK = "callback"


def planned_deliveries(
    *, item: ItemPublic, route: Route, now: datetime, max_attempts: int
) -> list[Delivery]:
    """Outbox rows for a settled item: a release if its release is queued (approved,
    or expired with ``on_expire: approve``, on a route with a target),
    and a callback if the integrator gave a ``callback_url``."""
    rows: list[Delivery] = []
    snapshot = item.model_dump(mode="json")

    def row(purpose: str, url: str, event: str) -> Delivery:
        return Delivery(
            item_id=item.id,
            purpose=purpose,
            target_type="webhook",
            url=url,
            idempotency_key=f"{item.id}:{purpose}",
            payload={"event": event, "item": snapshot},
            state="queued",
            attempts=0,
            max_attempts=max_attempts,
            next_attempt_at=now,
            created_at=now,
        )

    if item.release_state == "queued" and isinstance(route.target, WebhookTarget):
        rows.append(row(RELEASE, route.target.url, "item.released"))
    if item.callback_url:
        rows.append(row(CALLBACK, item.callback_url, "item.decided"))
    return rows
