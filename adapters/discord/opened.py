"""When a reviewer opened a Discord form (the Edit or Reject modal), by signoff's clock
(the one decisions are timed by), carried in the modal's custom id, which Discord hands
back with the submission. Stateless, so it survives a restart of the bot between
opening and submitting.

A card's Approve button opens nothing: its decisions are timed from posting.
"""

from __future__ import annotations

from datetime import UTC, datetime

import discord

MAX_CUSTOM_ID = 100  # Discord's limit


def with_opened(modal: discord.ui.Modal, *, at: datetime) -> discord.ui.Modal:
    """``modal`` with its opening time ``at`` (whole seconds) appended to its custom id."""
    custom_id = f"{modal.custom_id}:{int(at.timestamp())}"
    if len(custom_id) <= MAX_CUSTOM_ID:  # never: item ids are short; but never break a form
        modal.custom_id = custom_id
    return modal


def opened_from(value: str | None) -> datetime | None:
    """The opening time from a modal custom id's last part (unix seconds), or None."""
    if not value or not value.isdigit():
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)
