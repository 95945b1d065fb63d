"""Discord reports when a reviewer opened the Edit or Reject form: the modal's custom id
carries the time it was opened, and the decision is timed from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import discord
from sqlalchemy import update
from sqlmodel import col, select

from adapters.discord.bot import _MODAL
from adapters.discord.opened import opened_from, with_opened
from bot.schemas import ItemCreate
from storage.models import Decision, Item
from tests.discord.conftest import DiscordWorld

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


def test_the_opening_time_rides_in_the_custom_id() -> None:
    at = datetime(2026, 1, 5, 9, 30, 15, 500000, tzinfo=UTC)
    modal = with_opened(discord.ui.Modal(title="Edit draft", custom_id="signoff-edit:itm_1"), at=at)
    assert modal.custom_id == f"signoff-edit:itm_1:{int(at.timestamp())}"
    assert opened_from(modal.custom_id.rsplit(":", 1)[1]) == at.replace(microsecond=0)
    assert opened_from(None) is None and opened_from("soon") is None
    match = _MODAL.match("signoff-reject:itm_01ABC:1767605415")
    assert match and match["item_id"] == "itm_01ABC" and match["opened"] == "1767605415"
    old = _MODAL.match("signoff-reject:itm_01ABC")  # a form opened by an older version
    assert old and old["item_id"] == "itm_01ABC" and old["opened"] is None


async def test_an_edit_in_the_modal_is_timed_from_opening_it(world: DiscordWorld) -> None:
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Bump a",
        confidence=0.5,
        content={"repository": "o/r", "title": "Bump a", "diff": DIFF},
    )
    item_id = (await world.system.service.submit(integrator=world.integrator, data=data)).item.id
    await world.env.settle()
    message: Any = world.channel.last_message
    async with world.system.sessions() as session, session.begin():  # posted an hour ago
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        await session.exec(update(Item).where(col(Item.id) == item_id).values(created_at=hour_ago))
    shown = await world.lead.click(message, custom_id=f"signoff:edit:{item_id}")
    assert shown.modal is not None
    assert _MODAL.match(shown.modal["custom_id"])["opened"] is not None  # type: ignore[index]
    await world.lead.submit_modal(shown, {"title": "Bump a to 3", "diff": DIFF})
    async with world.system.sessions() as session:
        decision = (await session.exec(select(Decision).where(Decision.item_id == item_id))).one()
    assert decision.action == "edit" and decision.since_posted_seconds >= 3600
    assert decision.opened_seconds is not None and 0 <= decision.opened_seconds < 60
