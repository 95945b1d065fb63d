"""Settling an item: what a final decision writes, whoever makes it.

A reviewer's click, a policy's auto-decision and an expiry all settle an item through
:func:`settle`, which works out the item's new values, the decision record and the
outbox rows; the caller writes them in one transaction with a conditional update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import Conflict, Winner
from bot.outbox import planned_deliveries
from bot.ports import Actor
from bot.routes import Route, RouteTable
from bot.schemas import ItemPublic
from bot.states import Action, ItemState, ReleaseState, next_release_state, next_state
from bot.views import item_public
from storage.models import Decision, Delivery, Item
from storage.rows import new_row


@dataclass(frozen=True, slots=True)
class Settled:
    values: dict[str, Any]
    decision: Decision
    deliveries: list[Delivery]
    item: ItemPublic


def settle(
    *,
    row: Item,
    history: list[Decision],
    route: Route,
    routes: RouteTable,
    action: Action,
    actor: Actor,
    now: datetime,
    max_attempts: int,
    edited: dict[str, Any] | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
    release: bool | None = None,
    released: dict[str, Any] | None = None,
    choice: str | None = None,
) -> Settled:
    """What settling a pending item writes: the item's new values (applied to ``row``,
    which is new or detached), the decision, and the outbox rows.

    ``release`` says whether the item's content goes to the route's target; by default
    only an approved item's does (an expiry with ``on_expire: approve`` sets it).
    ``released`` is a version to release that is not an edit (a comparison's winner);
    ``choice`` a comparison's verdict for its candidate (bot/ab.py).
    """
    state, outcome = next_state(ItemState(row.state), action)
    decision = new_decision(
        row,
        action,
        actor,
        now,
        edited=edited,
        reason_code=reason_code,
        reason_text=reason_text,
        choice=choice,
    )
    decision.decisive = True
    values: dict[str, Any] = {
        "state": state.value,
        "outcome": outcome.value if outcome else None,
        "updated_at": now,
        "decided_at": now,
        "next_step": None,
        "step_due_at": None,
        "post_due_at": None,
    }
    if release is None:
        release = state == ItemState.approved
    if release:
        values["final_content"] = edited or released or row.final_content or row.content
        if route.release_targets and row.gold_expected is None:  # gold items stay in signoff
            values["release_state"] = next_release_state(
                ReleaseState(row.release_state), ReleaseState.queued
            ).value
    for key, value in values.items():
        setattr(row, key, value)
    item = item_public(row, [*history, decision], routes)
    deliveries = planned_deliveries(item=item, route=route, now=now, max_attempts=max_attempts)
    return Settled(values=values, decision=decision, deliveries=deliveries, item=item)


def new_decision(
    row: Item,
    action: Action,
    actor: Actor,
    now: datetime,
    *,
    edited: dict[str, Any] | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
    choice: str | None = None,
) -> Decision:
    """The decision record of ``action`` on ``row`` (not yet decisive)."""
    return new_row(  # fast: see storage/rows.py
        Decision,
        item_id=row.id,
        action=action.value,
        surface=actor.surface,
        actor_id=actor.user_id,
        actor_name=actor.name,
        content_before=(row.final_content or row.content) if edited is not None else None,
        content_after=edited,
        reason_code=reason_code,
        reason_text=reason_text,
        choice=choice,
        at=now,
        since_posted_seconds=max(0.0, (now - row.created_at).total_seconds()),
    )


def already_settled(row: Item, history: list[Decision]) -> Conflict:
    """The Conflict a late clicker gets, naming who settled the item and when."""
    final = next((d for d in reversed(history) if d.decisive), None)
    if final is None:
        return Conflict(f"item {row.id} is already {row.state}")
    winner = Winner(
        actor_name=final.actor_name,
        actor_id=final.actor_id,
        surface=final.surface,
        action=final.action,
        at=final.at,
    )
    return Conflict(
        f"item {row.id} is already {row.state}: {final.action} by {final.actor_name} "
        f"at {final.at:%Y-%m-%d %H:%M:%S} UTC",
        winner=winner,
    )
