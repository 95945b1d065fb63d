"""Every legal transition is allowed and every other raises InvalidTransition."""

from __future__ import annotations

import itertools

import pytest

from bot.errors import InvalidTransition
from bot.states import (
    Action,
    ItemState,
    Outcome,
    ReleaseState,
    item_transitions,
    next_release_state,
    next_state,
    release_transitions,
)

ALLOWED = {
    (ItemState.pending, Action.approve, True): (ItemState.approved, Outcome.approved),
    (ItemState.pending, Action.approve, False): (ItemState.pending, None),
    (ItemState.pending, Action.edit, True): (ItemState.approved, Outcome.edited),
    (ItemState.pending, Action.edit, False): (ItemState.pending, None),
    (ItemState.pending, Action.reject, True): (ItemState.rejected, Outcome.rejected),
    (ItemState.pending, Action.auto_approve, True): (ItemState.approved, Outcome.auto_approved),
    (ItemState.pending, Action.auto_reject, True): (ItemState.rejected, Outcome.auto_rejected),
    (ItemState.pending, Action.expire, True): (ItemState.expired, Outcome.expired),
    # reject and redraft: the item stays pending while its next revision is drafted
    (ItemState.pending, Action.redraft, True): (ItemState.pending, None),
}


@pytest.mark.parametrize(("key", "expected"), ALLOWED.items(), ids=str)
def test_allowed_item_transition(key: tuple[ItemState, Action, bool], expected: object) -> None:
    state, action, reached = key
    assert next_state(state, action, quorum_reached=reached) == expected


def test_table_is_exactly_the_allowed_set() -> None:
    assert item_transitions() == ALLOWED


@pytest.mark.parametrize(
    ("state", "action", "reached"),
    [
        (s, a, q)
        for s, a, q in itertools.product(ItemState, Action, (True, False))
        if s != ItemState.pending
    ],
    ids=str,
)
def test_every_settled_state_refuses_every_action(
    state: ItemState, action: Action, reached: bool
) -> None:
    with pytest.raises(InvalidTransition, match=f"cannot {action.value} an item that is"):
        next_state(state, action, quorum_reached=reached)


@pytest.mark.parametrize("action", [Action.reject, Action.auto_approve, Action.expire])
def test_quorum_only_matters_for_approvals(action: Action) -> None:
    assert next_state(ItemState.pending, action, quorum_reached=False) == next_state(
        ItemState.pending, action, quorum_reached=True
    )


RELEASE_ALLOWED = {
    (ReleaseState.none, ReleaseState.queued),
    (ReleaseState.queued, ReleaseState.released),
    (ReleaseState.queued, ReleaseState.failed),
    (ReleaseState.failed, ReleaseState.queued),
}


@pytest.mark.parametrize(
    ("current", "new"), list(itertools.product(ReleaseState, ReleaseState)), ids=str
)
def test_release_transitions(current: ReleaseState, new: ReleaseState) -> None:
    if (current, new) in RELEASE_ALLOWED:
        assert next_release_state(current, new) == new
    else:
        with pytest.raises(InvalidTransition):
            next_release_state(current, new)
    assert release_transitions() == RELEASE_ALLOWED
