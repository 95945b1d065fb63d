"""Turn stored rows into the public item shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.policy import Vote, approvers
from bot.prompts import public_prompt
from bot.routes import RouteTable
from bot.schemas import AidPublic, DecisionPublic, ItemPublic, RevisionPublic, UsagePublic
from bot.states import HUMAN_ACTIONS, Action
from storage.models import Decision, Item


def votes_of(decisions: Sequence[Decision]) -> list[Vote]:
    return [
        Vote(Action(d.action), f"{d.surface}:{d.actor_id}")
        for d in decisions
        if d.action in HUMAN_ACTIONS
    ]


def decision_public(d: Decision) -> DecisionPublic:
    # model_construct: stored rows are already valid; this runs for every item served.
    return DecisionPublic.model_construct(
        action=d.action,
        surface=d.surface,
        actor_id=d.actor_id,
        actor_name=d.actor_name,
        reason_code=d.reason_code,
        reason_text=d.reason_text,
        at=d.at,
        since_posted_seconds=d.since_posted_seconds,
        content_after=d.content_after,
        choice=d.choice,
    )


def item_public(item: Item, decisions: Sequence[Decision], routes: RouteTable) -> ItemPublic:
    route = routes.get(item.route)
    return ItemPublic.model_construct(
        id=item.id,
        route=item.route,
        kind=item.kind,
        title=item.title,
        content=item.content,
        final_content=item.final_content,
        prompt=public_prompt(item.prompt),
        confidence=item.confidence,
        callback_url=item.callback_url,
        metadata=item.meta,
        requested_by=item.requested_by,
        state=item.state,
        outcome=item.outcome,
        release_state=item.release_state,
        release_error=item.release_error,
        approvals=len(approvers(votes_of(decisions))) if item.state == "pending" else 0,
        quorum=route.quorum if route else 1,
        decisions=[decision_public(d) for d in decisions],
        created_at=item.created_at,
        updated_at=item.updated_at,
        decided_at=item.decided_at,
        due_at=item.due_at,
        ab_swapped=item.ab_swapped,
        **_drafting(item),
    )


_PLAIN: dict[str, Any] = {
    "confidence_source": None,
    "confidence_note": None,
    "task_id": None,
    "revision": 1,
    "redrafting": False,
    "aid": None,
    "usage": None,
}


def _drafting(item: Item) -> dict[str, Any]:
    """The LLM-drafting fields of an item's public form (defaults when it has none)."""
    plain = item.task_id is None and item.confidence_source is None and item.aid is None
    if plain and not (item.llm_input_tokens or item.llm_output_tokens):
        # Every field given: model_construct fills a missing one from its default, and
        # for a default_factory pydantic 2.14 inspects the factory's signature each time
        # (about 0.3 ms for ``list``: the largest single cost of ingest, bench/ingest.py).
        return {**_PLAIN, "revisions": []}
    return {
        "confidence_source": item.confidence_source,
        "confidence_note": item.confidence_note,
        "task_id": item.task_id,
        "revision": item.revision,
        "revisions": [RevisionPublic.model_validate(r) for r in item.revisions or ()],
        "redrafting": item.redraft_until is not None,
        "aid": AidPublic.model_validate(item.aid) if item.aid else None,
        "usage": (
            UsagePublic(
                input_tokens=item.llm_input_tokens,
                output_tokens=item.llm_output_tokens,
                cost_usd=round(item.llm_cost, 6),
            )
            if item.llm_input_tokens or item.llm_output_tokens
            else None
        ),
    }
