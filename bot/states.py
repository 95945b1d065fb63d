"""Item states, outcomes, release states and every transition between them.

This module is the only place that knows which state change is legal: the service
asks :func:`next_state` / :func:`next_release_state` and stores what they answer.
"""

from __future__ import annotations

from enum import StrEnum

from bot.errors import InvalidTransition


class ItemState(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"


class Outcome(StrEnum):
    approved = "approved"
    edited = "edited"
    rejected = "rejected"
    expired = "expired"
    auto_approved = "auto_approved"
    auto_rejected = "auto_rejected"


class ReleaseState(StrEnum):
    none = "none"
    queued = "queued"
    released = "released"
    failed = "failed"


class Action(StrEnum):
    """What a decision record says happened."""

    approve = "approve"
    edit = "edit"
    reject = "reject"
    auto_approve = "auto_approve"
    auto_reject = "auto_reject"
    expire = "expire"
    redraft = "redraft"  # a reviewer's "reject and redraft": the item stays pending


HUMAN_ACTIONS = frozenset({Action.approve, Action.edit, Action.reject, Action.redraft})

# (state, action, quorum reached) -> (new state, outcome). Anything absent is illegal.
_ITEM_TRANSITIONS: dict[tuple[ItemState, Action, bool], tuple[ItemState, Outcome | None]] = {
    (ItemState.pending, Action.approve, True): (ItemState.approved, Outcome.approved),
    (ItemState.pending, Action.approve, False): (ItemState.pending, None),
    (ItemState.pending, Action.edit, True): (ItemState.approved, Outcome.edited),
    (ItemState.pending, Action.edit, False): (ItemState.pending, None),
    (ItemState.pending, Action.reject, True): (ItemState.rejected, Outcome.rejected),
    (ItemState.pending, Action.redraft, True): (ItemState.pending, None),
    (ItemState.pending, Action.auto_approve, True): (ItemState.approved, Outcome.auto_approved),
    (ItemState.pending, Action.auto_reject, True): (ItemState.rejected, Outcome.auto_rejected),
    (ItemState.pending, Action.expire, True): (ItemState.expired, Outcome.expired),
}

_RELEASE_TRANSITIONS: frozenset[tuple[ReleaseState, ReleaseState]] = frozenset(
    {
        (ReleaseState.none, ReleaseState.queued),
        (ReleaseState.queued, ReleaseState.released),
        (ReleaseState.queued, ReleaseState.failed),
        (ReleaseState.failed, ReleaseState.queued),  # a reviewer's Retry
    }
)


def next_state(
    state: ItemState, action: Action, *, quorum_reached: bool = True
) -> tuple[ItemState, Outcome | None]:
    """The state and outcome after ``action``; raises InvalidTransition if illegal.

    ``quorum_reached`` matters only for approvals and edits: below quorum they are
    recorded and the item stays pending.
    """
    if action not in (Action.approve, Action.edit):
        quorum_reached = True  # a reject vetoes; policy and expiry act alone
    try:
        return _ITEM_TRANSITIONS[(state, action, quorum_reached)]
    except KeyError:
        raise InvalidTransition(f"cannot {action.value} an item that is {state.value}") from None


def next_release_state(current: ReleaseState, new: ReleaseState) -> ReleaseState:
    """Check a release state change; raises InvalidTransition if illegal."""
    if (current, new) not in _RELEASE_TRANSITIONS:
        raise InvalidTransition(f"release cannot go from {current.value} to {new.value}")
    return new


def item_transitions() -> dict[tuple[ItemState, Action, bool], tuple[ItemState, Outcome | None]]:
    """A copy of the legal item transitions (for tests and documentation)."""
    return dict(_ITEM_TRANSITIONS)


def release_transitions() -> frozenset[tuple[ReleaseState, ReleaseState]]:
    """The legal release transitions (for tests and documentation)."""
    return _RELEASE_TRANSITIONS
