"""Expiring an item: its own outcome, settled like a decision and never reported as a
rejection.

``on_expire: reject`` ends the item with nothing released; ``approve`` ends it and
releases the draft as submitted (or as edited by an earlier quorum vote); both give
state ``expired`` and outcome ``expired``, and the decision record says which. (``keep``
never reaches this module: the sweep only reminds people that the item is overdue.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.escalation import format_duration
from bot.ports import Actor
from bot.routes import Route, RouteTable
from bot.schemas import ItemPublic
from bot.settle import settle
from bot.states import Action, ItemState
from storage import items as item_store
from storage import outbox as outbox_store
from storage import steps as step_store
from storage.db import SessionFactory
from storage.models import StepRun

SCHEDULER = Actor(surface="policy", user_id="scheduler", name="signoff scheduler")
_EFFECT = {"reject": "rejected by policy", "approve": "approved by policy"}


class Expirer:
    """Settles overdue items as ``expired`` with a conditional update, like a click."""

    def __init__(self, *, sessions: SessionFactory, routes: RouteTable, max_attempts: int) -> None:
        self._sessions = sessions
        self._routes = routes
        self._max_attempts = max_attempts

    async def expire(
        self,
        *,
        item_id: str,
        route: Route,
        step: int,
        skipped: Sequence[int],
        next_step_expected: int,
        now: datetime,
    ) -> ItemPublic | None:
        """Expire the item if it is still pending at this step; None if a decision or
        another sweep got there first. One transaction: the item, the decision, the
        outbox rows and the step run."""
        effect = route.escalation[step].expiry_effect
        async with self._sessions() as session, session.begin():
            row = await item_store.get_item(session, item_id=item_id)
            if row is None or row.state != ItemState.pending:
                return None
            if row.next_step != next_step_expected:
                return None
            session.expunge(row)
            history = await item_store.decisions_for(session, item_ids=[item_id])
            version = row.version
            waited = format_duration(route.escalation[step].after)
            due_at = row.step_due_at or now
            settled = settle(
                row=row,
                history=history,
                route=route,
                routes=self._routes,
                action=Action.expire,
                actor=SCHEDULER,
                now=now,
                max_attempts=self._max_attempts,
                reason_code=effect,
                reason_text=f"after {waited} — {_EFFECT[effect]}",
                release=effect == "approve",
            )
            if not await item_store.update_item_if_version(
                session, item_id=item_id, version=version, values=settled.values
            ):
                return None
            await item_store.add_decision(session, decision=settled.decision)
            for delivery in settled.deliveries:
                await outbox_store.enqueue(session, delivery=delivery)
            for index in (*skipped, step):
                session.add(
                    StepRun(
                        item_id=item_id,
                        route=route.name,
                        step=index,
                        action=route.escalation[index].do,
                        state=step_store.DONE,
                        due_at=due_at,
                        claimed_until=None,
                        attempts=1,
                        done_posts=[],
                        detail=(
                            f"expired after {waited}: {_EFFECT[effect]}"
                            if index == step
                            else "skipped: a later step was due too"
                        ),
                        fired_at=now,
                    )
                )
        return settled.item


def expiry_note(*, route: Route, posted_at: datetime, now: datetime) -> str | None:
    """``expires in 2 h`` for a digest, or None when the route never expires items."""
    for step in route.escalation:
        if step.do == "expire" and step.expiry_effect != "keep":
            left = posted_at + step.after - now
            return f"expires in {format_duration(left)}" if left.total_seconds() > 0 else None
    return None
