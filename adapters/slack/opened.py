"""When a reviewer opened a Slack form (the Edit or Reject modal), carried in the
modal's ``private_metadata``: Slack keeps that server-side and hands it back with the
submission, so the time cannot be altered by the client and survives a restart or
another replica taking the submission.

A card's Approve button opens nothing: its decisions are timed from posting.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

_KEY = "opened"


def stamp_opened(view: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """``view`` with its opening time ``at`` added to its private metadata."""
    data = json.loads(view.get("private_metadata") or "{}")
    data[_KEY] = at.isoformat()
    return {**view, "private_metadata": json.dumps(data)}


def opened_at(view: dict[str, Any]) -> datetime | None:
    """The opening time a submitted modal carries; None for a modal without one (opened
    by an older version) or with a time that does not parse."""
    try:
        value = json.loads(view.get("private_metadata") or "{}").get(_KEY)
        opened = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, AttributeError):
        return None
    return opened if opened is not None and opened.tzinfo is not None else None
