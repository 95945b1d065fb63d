"""What to deliver when an item is settled: its release and the decision callback.

The rows are written in the same transaction as the deciding update (DESIGN §6). A
route may chain release targets (send the e-mail, then call a webhook): the first
link is queued with the decision, each next one when the one before it is delivered,
every link with its own outbox row, state and idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.routes import Route, Target
from bot.schemas import ItemPublic
from storage.models import Delivery

RELEASE = "release"
CALLBACK = "callback"


def planned_deliveries(
    *, item: ItemPublic, route: Route, now: datetime, max_attempts: int
) -> list[Delivery]:
    """Outbox rows for a settled item: the first link of its release if the release is
    queued (approved, or expired with ``on_expire: approve``, on a route with targets),
    and a callback if the integrator gave a ``callback_url``."""
    rows: list[Delivery] = []
    snapshot = item.model_dump(mode="json")
    chain = [target_config(t) for t in route.release_targets]
    if item.release_state == "queued" and chain:
        rows.append(
            release_link(
                item_id=item.id,
                snapshot=snapshot,
                chain=chain,
                link=0,
                now=now,
                max_attempts=max_attempts,
            )
        )
    if item.callback_url:
        rows.append(
            Delivery(
                item_id=item.id,
                purpose=CALLBACK,
                target_type="webhook",
                url=item.callback_url,
                idempotency_key=f"{item.id}:{CALLBACK}",
                payload={"event": "item.decided", "item": snapshot},
                state="queued",
                attempts=0,
                max_attempts=max_attempts,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return rows


def release_link(
    *,
    item_id: str,
    snapshot: dict[str, Any],
    chain: list[dict[str, Any]],
    link: int,
    now: datetime,
    max_attempts: int,
) -> Delivery:
    """The outbox row of link ``link`` of an item's release chain."""
    target = chain[link]
    return Delivery(
        item_id=item_id,
        purpose=RELEASE,
        target_type=str(target["type"]),
        url=describe_target(target),
        # the first link keeps the plain key, so a one-target release reads as before
        idempotency_key=f"{item_id}:{RELEASE}" if link == 0 else f"{item_id}:{RELEASE}:{link}",
        payload={
            "event": "item.released",
            "item": snapshot,
            "target": target,
            "chain": chain,
            "link": link,
        },
        state="queued",
        attempts=0,
        max_attempts=max_attempts,
        next_attempt_at=now,
        created_at=now,
    )


def target_config(target: Target) -> dict[str, Any]:
    """A target's configuration as stored with its release (route file names)."""
    return target.model_dump(mode="json", by_alias=True)


def describe_target(target: dict[str, Any]) -> str:
    """Where a release goes, for lists and history: a URL, ``smtp``, a repository."""
    kind = target["type"]
    if kind == "webhook":
        return str(target["url"])
    if kind == "email":
        return f"smtp (from {target.get('from')})"
    return f"{kind}:{target.get('repository')}"
