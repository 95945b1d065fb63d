"""The published HumanLayer SDK (humanlayer==0.7.9) against signoff's /humanlayer/v1.

The acceptance of the HumanLayer-compatible API: ``require_approval`` approved with a
Slack click runs the function; rejected with a comment returns the SDK's "User denied"
message with it; ``human_as_tool`` answered in the web inbox returns the answer; a
reused ``call_id`` is one item.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from humanlayer import FunctionCallSpec, HumanContactSpec, ResponseOption

from tests.humanlayer.conftest import World
from tests.slack.conftest import CHANNEL, eventually


def refund_tool(world: World, ran: list[tuple[str, int]], **kw: Any) -> Any:
    hl = world.sdk()

    @hl.require_approval(**kw)
    def send_refund(order: str, amount: int) -> str:
        """Refund ``amount`` on ``order``."""
        ran.append((order, amount))
        return f"refunded {amount} on order {order}"

    return send_refund


async def test_require_approval_approved_in_slack_runs_the_function(world: World) -> None:
    ran: list[tuple[str, int]] = []
    send_refund = refund_tool(world, ran)
    call = asyncio.create_task(asyncio.to_thread(send_refund, order="1234", amount=12))

    item = await world.pending("message")
    assert item.route == "humanlayer" and item.requested_by == "agent"
    assert item.content == {"text": "send_refund(order='1234', amount=12)"}
    meta = item.metadata["humanlayer"]
    assert (meta["fn"], meta["kwargs"]) == ("send_refund", {"order": "1234", "amount": 12})
    assert meta["call_id"].startswith("call-") and meta["run_id"]
    [card] = world.slack.messages[CHANNEL]
    assert "send_refund(order='1234', amount=12)" in json.dumps(card["blocks"])
    assert not ran  # nothing runs before a human approves

    answer = await world.click("approve", item.id)
    assert answer.status_code == 200
    result = await asyncio.wait_for(call, timeout=15)

    assert result == "refunded 12 on order 1234"
    assert ran == [("1234", 12)]
    decided = await world.system.reader.get(item_id=item.id)
    assert decided.outcome == "approved"
    assert (decided.decisions[-1].surface, decided.decisions[-1].actor_id) == ("slack", "U0LEAD")
    assert world.sleeps and set(world.sleeps) == {3}  # the SDK's own polling loop ran


async def test_rejected_with_a_comment_the_sdk_says_user_denied(world: World) -> None:
    ran: list[tuple[str, int]] = []
    options = [ResponseOption(name="amount_too_big", title="The amount is too big")]
    send_refund = refund_tool(world, ran, reject_options=options)
    call = asyncio.create_task(asyncio.to_thread(send_refund, order="77", amount=900))

    item = await world.pending("message")
    await world.click("reject", item.id)
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    offered = json.dumps(view["blocks"])
    assert "amount_too_big" in offered and "too risky" in offered  # the SDK's and the route's
    await world.submit_modal(
        view,
        {
            "reason_code": {
                "value": {"type": "static_select", "selected_option": {"value": "amount_too_big"}}
            },
            "reason_text": {
                "value": {"type": "plain_text_input", "value": "over 500 needs a manager"}
            },
        },
    )
    result = await asyncio.wait_for(call, timeout=15)

    assert result == "User denied send_refund with message: over 500 needs a manager"
    assert ran == []
    hl = world.sdk()
    status = (
        await asyncio.to_thread(hl.get_function_call, item.metadata["humanlayer"]["call_id"])
    ).status
    assert status.approved is False and status.comment == "over 500 needs a manager"
    assert status.reject_option_name == "amount_too_big"
    assert status.requested_at is not None and status.responded_at is not None


async def test_human_as_tool_answered_in_the_web_inbox(world: World) -> None:
    ask = world.sdk().human_as_tool()
    asked = asyncio.create_task(asyncio.to_thread(ask, "Which plan is Jane on?"))

    item = await world.pending("question")
    assert item.content == {"question": "Which plan is Jane on?", "answer": None}
    csrf = await world.sign_in("rita", ["humanlayer"])
    page = await world.http.get(f"/items/{item.id}")
    assert "Which plan is Jane on?" in page.text and 'name="f_answer"' in page.text
    answered = await world.http.post(
        f"/items/{item.id}/decide",
        data={"action": "edit", "csrf": csrf, "f_answer": "Pro, since March"},
    )
    assert answered.status_code == 303, answered.text
    answer = await asyncio.wait_for(asked, timeout=15)

    assert answer == "Pro, since March"
    decided = await world.system.reader.get(item_id=item.id)
    assert decided.outcome == "edited" and decided.decisions[-1].actor_id == "rita"


async def test_human_as_tool_answered_in_a_slack_modal(world: World) -> None:
    ask = world.sdk().human_as_tool()
    asked = asyncio.create_task(asyncio.to_thread(ask, "Refund the shipping too?"))

    item = await world.pending("question")
    [card] = world.slack.messages[CHANNEL]
    assert "Refund the shipping too?" in json.dumps(card["blocks"])
    await world.click("edit", item.id)
    [opened] = await eventually(lambda: world.slack.calls_to("views.open"))
    view = opened.response["view"]
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["f_answer"]
    await world.submit_modal(
        view, {"f_answer": {"value": {"type": "plain_text_input", "value": "Yes, both."}}}
    )

    assert await asyncio.wait_for(asked, timeout=15) == "Yes, both."


async def test_a_reused_call_id_is_one_item(world: World) -> None:
    hl = world.sdk(run_id="run-1")
    spec = FunctionCallSpec(fn="send_refund", kwargs={"order": "1", "amount": 5})
    first = await asyncio.to_thread(hl.create_function_call, spec, "call-fixed")
    again = await asyncio.to_thread(hl.create_function_call, spec, "call-fixed")
    assert first.call_id == again.call_id == "call-fixed"
    assert first.status is not None and again.status is not None
    assert first.status.requested_at == again.status.requested_at

    question = HumanContactSpec(msg="Ship it?")
    asked = await asyncio.to_thread(hl.create_human_contact, question, "call-fixed")
    asked_again = await asyncio.to_thread(hl.create_human_contact, question, "call-fixed")
    assert asked.call_id == asked_again.call_id == "call-fixed"  # its own namespace

    page = await world.system.reader.page(integrator_id=world.integrator.id)
    assert sorted(i.kind for i in page.items) == ["message", "question"]
    assert len(world.slack.calls_to("chat.postMessage")) == 2  # each card posted once
