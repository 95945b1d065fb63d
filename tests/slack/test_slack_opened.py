"""Slack reports when a reviewer opened the Edit or Reject form: the modal carries its
opening time in ``private_metadata`` and the decision is timed from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from adapters.slack.opened import opened_at, stamp_opened
from storage.models import Decision, Item
from tests.slack.conftest import SlackWorld, button_click, eventually, view_submission
from tests.slack.test_slack_e2e import _settled, post_item


def test_the_opening_time_rides_in_the_private_metadata() -> None:
    at = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    view = {"callback_id": "signoff:edit", "private_metadata": json.dumps({"item": "itm_1"})}
    stamped = stamp_opened(view, at=at)
    assert json.loads(stamped["private_metadata"]) == {"item": "itm_1", "opened": at.isoformat()}
    assert opened_at(stamped) == at and view["private_metadata"] == '{"item": "itm_1"}'
    assert opened_at(view) is None  # a form opened before this version: no time
    assert opened_at({"private_metadata": '{"opened": "yesterday"}'}) is None
    assert opened_at({"private_metadata": '{"opened": "2026-01-05T09:30:00"}'}) is None  # naive


async def test_an_edit_in_the_modal_is_timed_from_opening_it(world: SlackWorld) -> None:
    item_id, ts = await post_item(world)
    async with world.system.sessions() as session, session.begin():  # posted an hour ago
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        older = update(Item).where(col(Item.id) == item_id).values(created_at=hour_ago)
        await session.exec(older)
    await world.click(
        button_click(
            item_id=item_id,
            verb="edit",
            user="U0AGENT1",
            ts=ts,
            trigger_id=world.slack.new_trigger_id(),
        )
    )
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    assert "opened" in json.loads(view["private_metadata"])
    await world.click(
        view_submission(
            view,
            user="U0AGENT1",
            values={"f_subject": {"value": {"type": "plain_text_input", "value": "Refunded"}}},
        )
    )
    await eventually(lambda: _settled(world, item_id))
    async with world.system.sessions() as session:
        decision = (await session.exec(select(Decision).where(Decision.item_id == item_id))).one()
    assert decision.since_posted_seconds >= 3600
    assert decision.opened_seconds is not None and 0 <= decision.opened_seconds < 60
    assert decision.rubber_stamp is True  # a few milliseconds for the whole e-mail
