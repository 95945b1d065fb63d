"""The HumanLayer-compatible API over HTTP: keys, errors, routes, round-trips, the
agent-side respond and escalate calls (through the SDK where it has them)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from humanlayer import (
    Escalation,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContactSpec,
    HumanContactStatus,
    HumanLayer,
    HumanLayerException,
    ResponseOption,
)

from bot.errors import InvalidInput
from bot.ports import Actor
from storage import steps as step_store
from storage.models import StepRun
from tests.humanlayer.conftest import ONCALL, World
from tests.slack.conftest import CHANNEL, eventually

V1 = "/humanlayer/v1"
CALL: dict[str, Any] = {
    "run_id": "run-1",
    "call_id": "call-1",
    "spec": {
        "fn": "send_refund",
        "kwargs": {"order": "1234", "amount": 12},
        "channel": {"slack": {"channel_or_user_id": "C0X", "context_about_channel_or_user": "ops"}},
        "reject_options": [{"name": "too_big", "title": "Too big", "interactive": False}],
        "state": {"thread": "T-9", "step": 3},
    },
}


def auth(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.api_key}"}


def routed(world: World, route: str) -> HumanLayer:
    return world.sdk(api_base_url=f"{world.base}/humanlayer/routes/{route}/v1")


async def test_a_key_is_required(world: World) -> None:
    missing = await world.http.get(f"{V1}/function_calls/call-1")
    wrong = await world.http.post(
        f"{V1}/function_calls", json=CALL, headers={"Authorization": "Bearer sk_nope"}
    )
    for answer in (missing, wrong):
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]["code"] == "unauthorized"


async def test_create_answers_the_call_with_spec_and_state_unchanged(world: World) -> None:
    made = await world.http.post(f"{V1}/function_calls", json=CALL, headers=auth(world))
    assert made.status_code == 201
    body = made.json()
    assert body["spec"] == {
        **CALL["spec"],
        "reject_options": [
            {
                "name": "too_big",
                "title": "Too big",
                "description": None,
                "prompt_fill": None,
                "interactive": False,
            }
        ],
    }
    assert (body["run_id"], body["call_id"]) == ("run-1", "call-1")
    assert body["status"]["requested_at"] and body["status"]["approved"] is None

    again = await world.http.post(f"{V1}/function_calls", json=CALL, headers=auth(world))
    assert again.status_code == 200 and again.json() == body
    read = await world.http.get(f"{V1}/function_calls/call-1", headers=auth(world))
    assert read.json() == body

    other = {**CALL, "spec": {**CALL["spec"], "kwargs": {"order": "1234", "amount": 99}}}
    clash = await world.http.post(f"{V1}/function_calls", json=other, headers=auth(world))
    assert clash.status_code == 409 and "call-1" in clash.json()["error"]["message"]


async def test_unknown_calls_and_bad_bodies_name_the_problem(world: World) -> None:
    await world.http.post(f"{V1}/function_calls", json=CALL, headers=auth(world))
    unknown = await world.http.get(f"{V1}/function_calls/call-2", headers=auth(world))
    assert unknown.status_code == 404 and "call-2" in unknown.json()["error"]["message"]
    other_type = await world.http.get(f"{V1}/contact_requests/call-1", headers=auth(world))
    assert other_type.status_code == 404  # a function call is not a contact request
    someone = await world.system.keys.create(name="someone-else")
    theirs = await world.http.get(
        f"{V1}/function_calls/call-1", headers={"Authorization": f"Bearer {someone.api_key}"}
    )
    assert theirs.status_code == 404  # another key's call does not exist for this one

    borrowed = await world.http.post(  # an ordinary item under a HumanLayer-looking key
        "/v1/items",
        json={"route": "ops", "kind": "message", "title": "t", "content": {"text": "x"}},
        headers={**auth(world), "Idempotency-Key": "humanlayer:function_call:call-3"},
    )
    assert borrowed.status_code == 201
    not_a_call = await world.http.get(f"{V1}/function_calls/call-3", headers=auth(world))
    assert not_a_call.status_code == 404

    no_fn = {**CALL, "spec": {"kwargs": {}}}
    bad = await world.http.post(f"{V1}/function_calls", json=no_fn, headers=auth(world))
    assert bad.status_code == 422 and "spec.fn" in bad.json()["error"]["message"]
    twice = {**CALL, "spec": {**CALL["spec"], "reject_options": [{"name": "a"}, {"name": "a"}]}}
    dup = await world.http.post(f"{V1}/function_calls", json=twice, headers=auth(world))
    assert dup.status_code == 422 and "unique" in dup.json()["error"]["message"]
    nowhere = await world.http.post(
        "/humanlayer/routes/nope/v1/function_calls", json=CALL, headers=auth(world)
    )
    assert nowhere.status_code == 404 and "nope" in nowhere.json()["error"]["message"]


async def test_the_base_url_can_name_the_route(world: World) -> None:
    hl = routed(world, "ops")
    call = await asyncio.to_thread(
        hl.create_function_call, FunctionCallSpec(fn="restart", kwargs={"service": "db"})
    )
    read = await asyncio.to_thread(world.sdk().get_function_call, call.call_id)
    assert read.spec.fn == "restart"  # the call is the key's, whichever route it went to
    [item] = (await world.system.reader.page(integrator_id=world.integrator.id)).items
    assert item.route == "ops" and item.title == "restart(service='db')"
    assert world.slack.calls_to("chat.postMessage") == []  # ops is a web-only route


async def test_the_calls_reject_options_are_the_cards_reasons(world: World) -> None:
    await world.http.post(f"{V1}/function_calls", json=CALL, headers=auth(world))
    [item] = (await world.system.reader.page(integrator_id=world.integrator.id)).items
    lead = Actor(surface="slack", user_id="U0LEAD", name="lead")
    with pytest.raises(InvalidInput, match=r"\(too risky, too_big\)"):  # the route's, the call's
        await world.system.service.decide(
            item_id=item.id, action="reject", actor=lead, reason_code="too_bigg"
        )
    await world.system.service.decide(
        item_id=item.id, action="reject", actor=lead, reason_code="too_big"
    )
    status = (await world.http.get(f"{V1}/function_calls/call-1", headers=auth(world))).json()[
        "status"
    ]
    assert status["approved"] is False and status["comment"] == "too_big"
    assert status["reject_option_name"] == "too_big" and status["responded_at"]


async def test_respond_decides_as_the_key_within_the_routes_rules(world: World) -> None:
    hl = world.sdk()
    call = await asyncio.to_thread(
        hl.create_function_call, FunctionCallSpec(fn="drop_table", kwargs={"name": "users"})
    )
    # the key asked: approving its own call is self-approval, off on this route
    with pytest.raises(HumanLayerException, match=r"403 .* approve their own item"):
        await asyncio.to_thread(
            hl.respond_to_function_call, call.call_id, FunctionCallStatus(approved=True)
        )
    denied = await asyncio.to_thread(
        hl.respond_to_function_call,
        call.call_id,
        FunctionCallStatus(approved=False, comment="not on a Friday"),
    )
    assert denied.status is not None
    assert (denied.status.approved, denied.status.comment) == (False, "not on a Friday")
    item = await world.system.reader.get(item_id=await item_id_of(world, "drop_table"))
    decision = item.decisions[-1]
    assert (decision.surface, decision.actor_id, decision.reason_text) == (
        "humanlayer",
        "agent",
        "not on a Friday",
    )

    ops = routed(world, "ops")  # allow_self_approval: true
    other = await asyncio.to_thread(
        ops.create_function_call, FunctionCallSpec(fn="restart", kwargs={})
    )
    approved = await asyncio.to_thread(
        ops.respond_to_function_call, other.call_id, FunctionCallStatus(approved=True)
    )
    assert approved.status is not None and approved.status.approved is True
    contact = await asyncio.to_thread(
        ops.create_human_contact, HumanContactSpec(msg="Which region?")
    )
    answered = await asyncio.to_thread(
        ops.respond_to_human_contact, contact.call_id, HumanContactStatus(response="eu-west")
    )
    assert answered.status is not None and answered.status.response == "eu-west"


async def steps(world: World, item_id: str) -> list[StepRun]:
    async with world.system.sessions() as session:
        return await step_store.runs_for(session, item_id=item_id)


async def item_id_of(world: World, fn: str) -> str:
    page = await world.system.reader.page(integrator_id=world.integrator.id)
    [item_id] = [i.id for i in page.items if i.metadata["humanlayer"].get("fn") == fn]
    return item_id


async def test_escalate_email_escalates_through_the_route(world: World) -> None:
    made = await world.http.post(f"{V1}/function_calls", json=CALL, headers=auth(world))
    assert made.status_code == 201
    hl = world.sdk()
    escalated = await asyncio.to_thread(
        hl.escalate_email_function_call,
        "call-1",
        Escalation(escalation_msg="Nobody answered in 10 minutes; the customer is waiting."),
    )
    assert escalated.call_id == "call-1" and escalated.status is not None

    oncall = await eventually(lambda: world.slack.messages.get(ONCALL))
    assert "send_refund" in json.dumps(oncall[0]["blocks"])  # the card, with its buttons
    reply = await eventually(
        lambda: [m for m in world.slack.messages[ONCALL] if m.get("thread_ts")]
    )
    assert "<@U0ON>" in reply[0]["text"] and "the customer is waiting" in reply[0]["text"]
    item_id = await item_id_of(world, "send_refund")
    [run] = await steps(world, item_id)
    assert (run.step, run.action, run.state) == (-1, "escalate", "done")
    assert "Escalated by agent: Nobody answered" in run.detail and ONCALL in run.detail

    await asyncio.to_thread(
        hl.escalate_email_function_call, "call-1", Escalation(escalation_msg="Still nothing.")
    )
    runs = await steps(world, item_id)
    assert [r.step for r in runs] == [-1, -2]
    assert len(world.slack.messages[CHANNEL]) == 1  # the route's own card is not reposted
    assert sum(1 for m in world.slack.messages[ONCALL] if not m.get("thread_ts")) == 1

    await world.system.service.decide(
        item_id=item_id, action="approve", actor=Actor(surface="slack", user_id="U0LEAD", name="l")
    )
    late = await world.http.post(
        f"{V1}/agent/function_calls/call-1/escalate_email",
        json={"escalation_msg": "hello?"},
        headers=auth(world),
    )
    assert late.status_code == 409 and "already approved" in late.json()["error"]["message"]


async def test_contact_answers_offer_and_name_response_options(world: World) -> None:
    hl = routed(world, "ops")
    options = [ResponseOption(name="yes"), ResponseOption(name="no", title="Not now")]
    contact = await asyncio.to_thread(
        hl.create_human_contact,
        HumanContactSpec(msg="Deploy now?", subject="Deploy", response_options=options),
    )
    [item] = (await world.system.reader.page(integrator_id=world.integrator.id)).items
    assert item.kind == "question" and item.title == "Deploy"
    assert item.content["question"].endswith(
        "Answer with one of: yes, no (Not now); or in your own words."
    )
    await world.system.service.decide(
        item_id=item.id,
        action="edit",
        actor=Actor(surface="web", user_id="rita", name="rita"),
        content={"answer": "yes"},
    )
    read = await asyncio.to_thread(hl.get_human_contact, contact.call_id)
    assert read.status is not None
    assert (read.status.response, read.status.response_option_name) == ("yes", "yes")
    assert read.spec.response_options == options
