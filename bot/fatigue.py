"""Reviewer fatigue and automation bias: how long a reviewer had an item, and whether an
approval came faster than its content could be read (a "rubber stamp").

Pure functions over numbers and content; :mod:`bot.service` applies them to each new
decision. The time to read is the time from when the surface showed this reviewer the
item (``opened_at``, where the surface knows it) to the decision, else the time since
the item was posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.routes import Route
from bot.states import Action
from storage.models import Decision

# Not read as text: the HTML alternative repeats an e-mail's body, and the addresses
# are glanced at, not read.
_UNREAD_FIELDS = frozenset({"html", "to", "cc"})
# Approving (with or without changes) is what a rubber stamp is; a rejection is not.
_APPROVALS = frozenset({Action.approve, Action.edit})


def text_length(content: Mapping[str, Any]) -> int:
    """The characters a reviewer reads in ``content``: every text value, in lists and
    nested objects too, except the fields in ``_UNREAD_FIELDS``."""
    return sum(_length(value) for key, value in content.items() if key not in _UNREAD_FIELDS)


def _length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return text_length(value)
    if isinstance(value, list | tuple):
        return sum(_length(v) for v in value)
    return 0


def seconds_between(start: datetime | None, end: datetime) -> float | None:
    """``end - start`` in seconds, never negative (clocks of surfaces may differ a
    little); None without a start."""
    if start is None:
        return None
    if start.tzinfo is None:
        raise ValueError("the start time must be timezone-aware")
    return max(0.0, (end - start).total_seconds())


def reading_seconds(*, since_posted: float, opened: float | None) -> float:
    """The time a reviewer had to read: opened → decided where known, else posted →
    decided (an item cannot have been read before it was posted)."""
    return since_posted if opened is None else min(opened, since_posted)


def is_rubber_stamp(
    *, action: Action | str, chars: int, seconds: float, chars_per_second: float
) -> bool:
    """Whether an approval or edit of ``chars`` characters after ``seconds`` of reading
    time came faster than a reader at ``chars_per_second`` could have read it."""
    if chars_per_second <= 0:
        raise ValueError("chars_per_second must be positive")
    if Action(action) not in _APPROVALS:
        return False
    return seconds < chars / chars_per_second


def time_decision(
    decision: Decision, *, shown: Mapping[str, Any], opened_at: datetime | None, route: Route
) -> None:
    """Set a new decision's ``opened_seconds`` (from ``opened_at``, when this reviewer
    opened the item, where the surface knows) and its ``rubber_stamp`` flag, given the
    content the reviewer was shown and the route's reading speed."""
    decision.opened_seconds = seconds_between(opened_at, decision.at)
    seconds = reading_seconds(
        since_posted=decision.since_posted_seconds, opened=decision.opened_seconds
    )
    decision.rubber_stamp = is_rubber_stamp(
        action=decision.action,
        chars=text_length(shown),
        seconds=seconds,
        chars_per_second=route.review.rubber_stamp_chars_per_second,
    )
