"""A/B comparisons: the hidden display order, and a reviewer's verdict in candidate terms.

A comparison's content is ``{prompt, a, b}``. At submit the order its card shows the two
outputs in is drawn at random and stored (``Item.ab_swapped``; True: the card shows
``b`` first, labelled "A"), so a reviewer's preference for whatever is shown first does
not become a preference for the integrator's first candidate. Reviewers only ever see
"A" and "B"; their verdict (``A``, ``B``, ``tie``, ``both_bad``) is mapped back to the
candidates (``a``, ``b``, ``tie``, ``both_bad``) before anything is recorded, and
``Decision.choice`` always holds the candidate.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import InvalidInput
from bot.schemas import ItemPublic
from bot.states import Action

KIND = "comparison"
# What a reviewer clicks (display terms) and what is recorded (candidate terms).
VERDICTS = ("A", "B", "tie", "both_bad")
CHOICES = ("a", "b", "tie", "both_bad")
BUTTON_TEXT = {"A": "A better", "B": "B better", "tie": "Tie", "both_bad": "Both bad"}
BOTH_BAD = "both bad"  # the reason text of a "Both bad" rejection


def draw_swapped(kind: str, rng: random.Random) -> bool | None:
    """The display order of a new item: for a comparison, True (b shown first) or
    False with equal odds; None for any other kind."""
    return rng.random() < 0.5 if kind == KIND else None


def shown(content: Mapping[str, Any], *, swapped: bool) -> dict[str, Any]:
    """A comparison's content in display order: ``a`` is what the card labels "A"."""
    first, second = (content["b"], content["a"]) if swapped else (content["a"], content["b"])
    return {"prompt": content["prompt"], "a": first, "b": second}


def card_content(item: ItemPublic) -> Mapping[str, Any]:
    """What an item's card is drawn from: a comparison's candidates in display order
    (also once decided: its released version names the winner, not both outputs);
    for other kinds the current version."""
    if item.kind == KIND:
        return shown(item.content, swapped=bool(item.ab_swapped))
    return item.final_content or item.content


def candidate(verdict: str, *, swapped: bool) -> str:
    """The candidate a displayed verdict means: "A" on a swapped card is ``b``."""
    if verdict not in VERDICTS:
        raise InvalidInput(
            f"{verdict!r} is not a comparison verdict (expected one of {', '.join(VERDICTS)})",
            field="choice",
        )
    if verdict == "A":
        return "b" if swapped else "a"
    if verdict == "B":
        return "a" if swapped else "b"
    return verdict


def action_for(verdict: str) -> Action:
    """How a verdict is decided: "Both bad" rejects, anything else approves (and counts
    as an approval towards a quorum)."""
    return Action.reject if verdict == "both_bad" else Action.approve


def released(content: Mapping[str, Any], choice: str) -> dict[str, Any]:
    """The released version of a comparison decided ``choice`` (candidate terms):
    the prompt, the winner and the winner's text. A tie releases ``a``, the candidate
    the integrator listed first."""
    text = content["b"] if choice == "b" else content["a"]
    return {"prompt": content["prompt"], "winner": choice, "text": text}


@dataclass(frozen=True, slots=True)
class Chosen:
    """A comparison verdict, resolved: the candidate, and the version to release."""

    choice: str  # a | b | tie | both_bad
    final: dict[str, Any] | None  # None: rejected (both bad)


def resolve(
    *,
    kind: str,
    content: Mapping[str, Any],
    swapped: bool | None,
    action: Action,
    verdict: str | None,
) -> Chosen | None:
    """Check a decision's verdict against the item and map it to the candidate.

    A comparison is decided with a verdict only; other kinds never take one. None for
    other kinds; InvalidInput naming ``choice`` or ``action`` when they do not fit.
    """
    if kind != KIND:
        if verdict is not None:
            raise InvalidInput(f"only a comparison takes a choice, not a {kind}", field="choice")
        return None
    if verdict is None:
        raise InvalidInput(
            f"a comparison is decided with a choice: {', '.join(VERDICTS)}", field="choice"
        )
    choice = candidate(verdict, swapped=bool(swapped))
    if action != action_for(verdict):
        raise InvalidInput(
            f"choice {verdict!r} is decided as {action_for(verdict).value}, not {action.value}",
            field="action",
        )
    return Chosen(choice, None if choice == "both_bad" else released(content, choice))
