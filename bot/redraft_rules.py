"""When "Reject and redraft" is open to a reviewer (pure rules, shared by the service
and the card)."""

from __future__ import annotations

from bot.errors import InvalidInput
from bot.routes import Route
from storage.models import Item


def redraft_refusal(*, task_id: str | None, revision: int, kind: str, route: Route) -> str | None:
    """Why this item cannot be redrafted, or None when it can."""
    if task_id is None:
        return "only items drafted by signoff from a task (POST /v1/tasks) can be redrafted"
    if kind == "comparison":
        return "a comparison cannot be redrafted"
    limit = route.llm.max_revisions
    if limit <= 1:
        return f"route {route.name!r} does not allow redrafts (llm.max_revisions is 1)"
    if revision >= limit:
        return f"this is revision {revision}, the last of the {limit} route {route.name!r} allows"
    return None


def check_redraftable(row: Item, route: Route) -> None:
    """Raise InvalidInput naming why ``row`` cannot be redrafted."""
    refusal = redraft_refusal(
        task_id=row.task_id, revision=row.revision, kind=row.kind, route=route
    )
    if refusal is not None:
        raise InvalidInput(refusal, field="action")
