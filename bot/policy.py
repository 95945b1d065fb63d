"""Routing and quorum policy: pure functions over a route and the decisions so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.routes import Route, Thresholds
from bot.states import Action


@dataclass(frozen=True, slots=True)
class AutoDecision:
    action: Action
    reason: str


def auto_decision(
    route: Route, confidence: float | None, *, thresholds: Thresholds | None = None
) -> AutoDecision | None:
    """What the route decides alone for this confidence, or None when a human must.

    ``thresholds``: the ones in force (see :mod:`bot.overrides`); default the route's."""
    if confidence is None:
        return None
    approve_at = (thresholds or route.thresholds).auto_approve_at
    reject_below = (thresholds or route.thresholds).auto_reject_below
    if approve_at is not None and confidence >= approve_at:
        return AutoDecision(Action.auto_approve, f"confidence {confidence:g} ≥ {approve_at:g}")
    if reject_below is not None and confidence < reject_below:
        return AutoDecision(Action.auto_reject, f"confidence {confidence:g} < {reject_below:g}")
    return None


@dataclass(frozen=True, slots=True)
class Vote:
    """A human decision as quorum sees it."""

    action: Action
    voter: str  # "surface:user_id"


def approvers(votes: Sequence[Vote]) -> list[str]:
    """Distinct people whose approval counts: an edit restarts the count (earlier
    approvals were of other content) and counts as its author's approval; a redraft
    restarts it with nobody (the next revision is new content)."""
    counted: list[str] = []
    for vote in votes:
        if vote.action == Action.edit:
            counted = [vote.voter]
        elif vote.action == Action.redraft:
            counted = []
        elif vote.action == Action.approve and vote.voter not in counted:
            counted.append(vote.voter)
    return counted
