"""Drafting with a model, end to end: tasks in, drafts out, redraft on reject, judged
confidence, reviewer aids, cost and budget. The real ``openai`` client talks to the
loopback OpenAI fake; the API is called over HTTP (in-process ASGI); releases and
callbacks go to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.app import System, build, create_app
from bot.clock import FrozenClock
from bot.drafting import schema_for
from bot.export import ExportFormat, export_lines
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.openai import OpenAIFake
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface

MODEL = "gpt-test"
PRICE_IN, PRICE_OUT = 2.50, 10.00  # US dollars per million tokens
EMAIL = {
    "to": ["jane@example.com"],
    "cc": None,
    "subject": "Your refund for order 1234",
    "body": "Hi Jane,\n\nwe have refunded order 1234 in full.\n\nBest, Support",
    "html": None,
}
WARMER = {
    **EMAIL,
    "body": "Dear Jane,\n\nso sorry for the wait: order 1234 is refunded.\n\nWarmly, Support",
}
SUBMITTED = {k: v for k, v in EMAIL.items() if v is not None}  # as an integrator sends it
TASK = {
    "route": "support",
    "kind": "email",
    "instructions": "Tell Jane her order was refunded.",
    "context": {"customer": "Jane", "ticket": "T-1234: where is my refund?"},
    "metadata": {"ticket": "T-1234"},
}
REVIEWER = Actor(surface="web", user_id="ann", name="Ann")


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake() as fake:
        yield fake


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def routes(receiver: Receiver) -> RouteTable:
    return parse_routes(
        {
            "prices": {MODEL: {"input_per_million": PRICE_IN, "output_per_million": PRICE_OUT}},
            "routes": {
                "support": {
                    "surfaces": [{"type": "web"}],
                    "reject_reasons": ["wrong facts", "wrong tone"],
                    "target": {"type": "webhook", "url": f"{receiver.url}/release"},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                    "llm": {"max_revisions": 3, "budget_per_day": 1.0},
                },
                "judged": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.9},
                    "llm": {
                        "judge": {"rubric": "Polite, correct, and answers the question."},
                        "aids": {"min_chars": 40},
                    },
                },
                "assisted": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.99},
                    "llm": {
                        "max_revisions": 2,
                        "judge": {"rubric": "Polite and correct."},
                        "aids": {"min_chars": 40},
                    },
                },
                "frugal": {
                    "surfaces": [{"type": "web"}],
                    "llm": {"budget_per_day": 0.001},
                },
            },
        }
    )


BOTH = pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """SQLite; tests marked BOTH also run on PostgreSQL."""
    if getattr(request, "param", "sqlite") == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return sqlite_url


@pytest.fixture
async def system(
    database: str, routes: RouteTable, fake: OpenAIFake, surface: RecordingSurface
) -> AsyncIterator[System]:
    settings = load_settings(
        {
            "SIGNOFF_DATABASE_URL": database,
            "SIGNOFF_OPENAI_MODEL": MODEL,
            "SIGNOFF_OPENAI_BASE_URL": f"{fake.url}/v1",
            "SIGNOFF_OPENAI_API_KEY": fake.api_key,
            "SIGNOFF_OPENAI_TIMEOUT_SECONDS": "1",
            "SIGNOFF_OPENAI_MAX_RETRIES": "1",
            "SIGNOFF_RELEASE_MAX_ATTEMPTS": "2",
        }
    )
    sys_ = build(settings, clock=FrozenClock(), routes=routes, surfaces={"web": surface})
    await upgrade(sys_.engine)
    try:
        yield sys_
    finally:
        await sys_.close()


@pytest.fixture
async def key(system: System) -> Any:
    return await system.keys.create(name="agent")


@pytest.fixture
async def client(system: System, key: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {key.api_key}"},
    ) as c:
        yield c


def cost(tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / 1_000_000


async def drafted(client: httpx.AsyncClient, system: System, body: dict[str, Any]) -> Any:
    """POST the task, let drafting finish, and return the task as the API shows it."""
    created = await client.post("/v1/tasks", json=body)
    assert created.status_code == 202, created.text
    assert created.json()["state"] == "drafting"
    assert system.tasks is not None
    async with asyncio.timeout(20):
        await system.tasks.drain()
    got = await client.get(f"/v1/tasks/{created.json()['id']}")
    assert got.status_code == 200, got.text
    return got.json()


# ---------------------------------------------------------------------- tasks


async def test_a_task_becomes_an_item_whose_draft_validates_and_whose_card_is_posted(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake, surface: RecordingSurface
) -> None:
    fake.answer(EMAIL, prompt_tokens=180, completion_tokens=45)

    task = await drafted(client, system, TASK)

    assert task["state"] == "submitted" and task["error"] is None
    assert task["usage"] == {"input_tokens": 180, "output_tokens": 45, "cost_usd": cost(180, 45)}
    item = (await client.get(f"/v1/items/{task['item_id']}")).json()
    assert item["content"] == {**EMAIL, "cc": [], "html": None}  # validated, defaults filled
    assert item["state"] == "pending" and item["task_id"] == task["id"]
    assert item["metadata"] == {"ticket": "T-1234"}
    assert item["title"] == "Tell Jane her order was refunded."
    [request] = fake.requests
    assert request.schema == schema_for("email")  # the fake received the JSON schema
    assert item["prompt"] == request.messages  # what the model saw
    assert item["usage"] == {"input_tokens": 180, "output_tokens": 45, "cost_usd": cost(180, 45)}
    [(card, _)] = surface.posts
    assert card.item_id == item["id"] and card.body is not None and "refunded" in card.body
    assert "redraft" in card.actions


async def test_wait_holds_a_task_until_drafting_ends(
    client: httpx.AsyncClient, fake: OpenAIFake
) -> None:
    fake.answer(EMAIL)
    created = (await client.post("/v1/tasks", json=TASK)).json()
    waited = await client.get(f"/v1/tasks/{created['id']}", params={"wait": 10})
    assert waited.json()["state"] == "submitted" and waited.json()["item_id"]


async def test_an_invalid_answer_is_asked_again_with_the_validation_error(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    fake.answer({**EMAIL, "to": ["not-an-address"]}).answer(EMAIL)

    task = await drafted(client, system, TASK)

    assert task["state"] == "submitted"
    _, second = fake.requests
    correction = second.messages[-1]
    assert correction["role"] == "user" and "to" in correction["content"]
    assert "not-an-address" in second.messages[-2]["content"]  # the invalid answer, quoted back


async def test_a_second_invalid_answer_fails_the_task_naming_the_field_and_calls_back(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake, receiver: Receiver, key: Any
) -> None:
    bad = {**EMAIL, "to": ["not-an-address"]}
    fake.answer(bad).answer(bad)

    task = await drafted(client, system, {**TASK, "callback_url": f"{receiver.url}/hook"})

    assert task["state"] == "failed" and task["item_id"] is None
    assert "to" in task["error"] and "not-an-address" in task["error"]
    assert len(fake.requests) == 2
    [call] = receiver.received
    body = json.loads(call.body)
    assert body["event"] == "task.failed" and body["task"]["id"] == task["id"]
    assert body["task"]["error"] == task["error"]
    assert call.headers["Idempotency-Key"] == f"{task['id']}:failed"
    stamp, signature = (p.split("=", 1)[1] for p in call.headers["Signoff-Signature"].split(","))
    expected = hmac.new(
        key.signing_secret.encode(), f"{stamp}.".encode() + call.body, hashlib.sha256
    ).hexdigest()
    assert signature == expected
    listed = (await client.get("/v1/items")).json()
    assert listed["items"] == []  # nothing half-made


async def test_a_rate_limit_then_an_answer_succeeds(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    fake.error(429, retry_after="0").answer(EMAIL)
    task = await drafted(client, system, TASK)
    assert task["state"] == "submitted"
    assert len(fake.requests) == 2


async def test_a_model_that_never_answers_times_out_into_a_failed_task(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    fake.hang().hang()
    task = await drafted(client, system, TASK)  # drafted() bounds this wait at 20 s
    assert task["state"] == "failed"
    assert task["error"] == "model did not answer within 1 s (2 tries)"


async def test_a_task_for_an_unknown_kind_or_route_is_refused_at_once(
    client: httpx.AsyncClient, fake: OpenAIFake
) -> None:
    bad_kind = await client.post("/v1/tasks", json={**TASK, "kind": "poem"})
    assert bad_kind.status_code == 422 and "poem" in bad_kind.json()["error"]["message"]
    bad_route = await client.post("/v1/tasks", json={**TASK, "route": "nowhere"})
    assert bad_route.status_code == 422 and "nowhere" in bad_route.json()["error"]["message"]
    missing = await client.post("/v1/tasks", json={"route": "support", "kind": "email"})
    assert missing.status_code == 422 and "instructions" in missing.json()["error"]["message"]
    assert fake.requests == []


async def test_a_task_replayed_with_its_idempotency_key_is_the_same_task(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    fake.answer(EMAIL)
    first = await client.post("/v1/tasks", json=TASK, headers={"Idempotency-Key": "t-1"})
    again = await client.post("/v1/tasks", json=TASK, headers={"Idempotency-Key": "t-1"})
    other = await client.post(
        "/v1/tasks", json={**TASK, "instructions": "x"}, headers={"Idempotency-Key": "t-1"}
    )
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert system.tasks is not None
    await system.tasks.drain()
    assert len(fake.requests) == 1


@BOTH
async def test_an_abandoned_task_is_taken_over_after_its_lease_and_submitted_once(
    system: System, fake: OpenAIFake, key: Any
) -> None:
    from storage import tasks as task_store

    assert system.tasks is not None
    fake.answer(EMAIL)
    integrator = await system.keys.authenticate(key.api_key)
    assert integrator is not None
    from bot.task_schemas import TaskCreate

    # A process stored the task and died before drafting it: nothing runs it here.
    system.tasks._start = lambda task_id: None  # type: ignore[method-assign]
    task, _ = await system.tasks.create(integrator=integrator, data=TaskCreate(**TASK))
    assert await system.tasks.run_due() == 0  # the lease still holds
    assert isinstance(system.clock, FrozenClock)
    system.clock.advance(timedelta(seconds=system.settings.task_lease_seconds + 1))
    assert await system.tasks.run_due() == 1
    assert await system.tasks.run_due() == 0
    async with system.sessions() as session:
        row = await task_store.get_task(session, task_id=task.id)
    assert row is not None and row.state == "submitted" and row.attempts == 2
    assert len(fake.requests) == 1


# ---------------------------------------------------------------------- redraft


@BOTH
async def test_reject_and_redraft_posts_revision_2_whose_approval_releases_it(
    client: httpx.AsyncClient,
    system: System,
    fake: OpenAIFake,
    surface: RecordingSurface,
    receiver: Receiver,
) -> None:
    fake.answer(EMAIL, prompt_tokens=100, completion_tokens=40)
    fake.answer(WARMER, prompt_tokens=300, completion_tokens=50)
    task = await drafted(client, system, TASK)
    item_id = task["item_id"]

    held = await system.service.decide(
        item_id=item_id,
        action="redraft",
        actor=REVIEWER,
        reason_code="wrong tone",
        reason_text="warmer, and say sorry for the wait",
    )
    assert held.state == "pending" and held.redrafting
    assert system.redrafter is not None
    async with asyncio.timeout(20):
        await system.redrafter.drain()

    # the reason reached the model, with the draft it was about
    second = fake.requests[1]
    said = "\n".join(m["content"] for m in second.messages)
    assert "warmer, and say sorry for the wait" in said and "wrong tone" in said
    assert "we have refunded order 1234 in full" in said
    item = (await client.get(f"/v1/items/{item_id}")).json()
    assert item["revision"] == 2 and item["state"] == "pending" and not item["redrafting"]
    assert item["content"]["body"] == WARMER["body"]
    [earlier] = item["revisions"]
    assert earlier["number"] == 1 and earlier["content"]["body"] == EMAIL["body"]
    assert earlier["reason"] == "wrong tone: warmer, and say sorry for the wait"
    assert earlier["rejected_by"] == "Ann"
    assert item["usage"] == {
        "input_tokens": 400,
        "output_tokens": 90,
        "cost_usd": round(cost(100, 40) + cost(300, 50), 6),
    }
    # the same card, updated in place: revision 2 with revision 1 kept below
    card, _ = surface.updates[-1]
    assert "revision 2 of 3" in card.context_line and "Dear Jane" in (card.body or "")
    assert any(s.label.startswith("Revision 1, rejected by Ann: wrong tone") for s in card.sections)
    assert "redraft" in card.actions
    assert len(surface.posts) == 1
    # a click on the old revision while redrafting would have been refused; now approve
    await system.service.decide(item_id=item_id, action="approve", actor=REVIEWER)
    await system.worker.run_once()
    [release] = receiver.accepted()
    assert json.loads(release.body)["item"]["final_content"]["body"] == WARMER["body"]
    final = (await client.get(f"/v1/items/{item_id}")).json()
    assert [d["action"] for d in final["decisions"]] == ["redraft", "approve"]
    # the DPO export prefers revision 2 over revision 1, on the task's prompt
    lines = [json.loads(line) async for line in export_lines(system.sessions, fmt=ExportFormat.dpo)]
    [pair] = lines
    assert pair["input"]["messages"] == item["prompt"]
    assert "Dear Jane" in pair["preferred_output"][0]["content"]
    assert "we have refunded order 1234" in pair["non_preferred_output"][0]["content"]


async def test_decisions_on_a_revision_being_redrafted_are_refused(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    fake.answer(EMAIL).hang().hang()
    task = await drafted(client, system, TASK)
    await system.service.decide(
        item_id=task["item_id"], action="redraft", actor=REVIEWER, reason_text="shorter"
    )
    from bot.errors import Conflict

    with pytest.raises(Conflict, match="being redrafted"):
        await system.service.decide(item_id=task["item_id"], action="approve", actor=REVIEWER)
    assert system.redrafter is not None
    async with asyncio.timeout(20):  # the model never answers: the item is rejected by policy
        await system.redrafter.drain()
    item = (await client.get(f"/v1/items/{task['item_id']}")).json()
    assert item["state"] == "rejected" and not item["redrafting"]
    assert "redraft failed" in item["decisions"][-1]["reason_text"]


async def test_redraft_needs_a_reason_and_a_task_and_stops_at_the_route_limit(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake, surface: RecordingSurface
) -> None:
    from bot.errors import InvalidInput

    fake.answer(EMAIL).answer(WARMER).answer(EMAIL)
    task = await drafted(client, system, TASK)
    item_id = task["item_id"]
    with pytest.raises(InvalidInput, match="reason"):
        await system.service.decide(item_id=item_id, action="redraft", actor=REVIEWER)
    assert system.redrafter is not None
    for _ in range(2):
        await system.service.decide(
            item_id=item_id, action="redraft", actor=REVIEWER, reason_text="again"
        )
        await system.redrafter.drain()
    card, _ = surface.updates[-1]
    assert "revision 3 of 3" in card.context_line and "redraft" not in card.actions
    with pytest.raises(InvalidInput, match="revision 3, the last of the 3"):
        await system.service.decide(
            item_id=item_id, action="redraft", actor=REVIEWER, reason_text="again"
        )
    plain = await client.post(
        "/v1/items",
        json={"route": "support", "kind": "email", "title": "t", "content": SUBMITTED},
    )
    with pytest.raises(InvalidInput, match="from a task"):
        await system.service.decide(
            item_id=plain.json()["id"], action="redraft", actor=REVIEWER, reason_text="x"
        )


# ---------------------------------------------------------------------- judge, aids


async def test_the_judge_scores_items_without_confidence_and_routes_by_it(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake, surface: RecordingSurface
) -> None:
    fake.answer({"score": 0.95, "rationale": "Polite and correct."}, prompt_tokens=50)
    fake.answer({"summary": "Tells Jane the refund is done.", "risky_spots": []})
    fake.answer({"score": 0.4, "rationale": "Does not answer the question."})
    fake.answer({"summary": "Tells Jane the refund is done.", "risky_spots": []})
    fake.answer({"summary": "Tells Jane the refund is done.", "risky_spots": []})
    item = {"route": "judged", "kind": "email", "title": "Refund", "content": SUBMITTED}

    high = (await client.post("/v1/items", json=item)).json()
    low = (await client.post("/v1/items", json=item)).json()
    given = (await client.post("/v1/items", json={**item, "confidence": 0.5})).json()

    assert high["outcome"] == "auto_approved" and high["confidence"] == 0.95
    assert high["confidence_source"] == "judge" and high["confidence_note"] == "Polite and correct."
    assert low["state"] == "pending" and low["confidence"] == 0.4
    assert given["confidence_source"] == "integrator"
    assert (
        "Polite, correct, and answers the question."
        in fake.requests[0].messages[0]["content"] + fake.requests[0].messages[1]["content"]
    )
    assert len(fake.requests) == 5  # two judgements, and a summary for each of the 3
    [(card, _)] = surface.posts[-2:-1]
    assert card.item_id == low["id"]
    assert "confidence 0.40 (judge)" in card.context_line
    labels = {f.label: f.value for f in card.fields}
    assert labels["Judge (machine-written)"] == "Does not answer the question."
    assert labels["Summary (machine-written)"] == "Tells Jane the refund is done."


async def test_a_failing_judge_leaves_the_item_to_people_and_says_why(
    client: httpx.AsyncClient, fake: OpenAIFake
) -> None:
    fake.error(500).error(500).answer({"summary": "s", "risky_spots": []})
    item = {"route": "judged", "kind": "email", "title": "Refund", "content": SUBMITTED}
    got = (await client.post("/v1/items", json=item)).json()
    assert got["state"] == "pending" and got["confidence"] is None
    assert got["confidence_note"].startswith("Not judged:")


# ---------------------------------------------------------------------- budget


@BOTH
async def test_the_daily_budget_refuses_tasks_once_spent_until_the_next_day(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    fake.answer(EMAIL, prompt_tokens=200, completion_tokens=100)  # $0.0015 > $0.001
    first = await drafted(client, system, {**TASK, "route": "frugal"})
    assert first["state"] == "submitted"

    refused = await client.post("/v1/tasks", json={**TASK, "route": "frugal"})

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "'frugal'" in error["message"] and "$0.0015" in error["message"]
    assert int(refused.headers["Retry-After"]) == 15 * 3600  # the clock is at 09:00 UTC
    assert len(fake.requests) == 1
    assert isinstance(system.clock, FrozenClock)
    system.clock.advance(timedelta(hours=15))
    fake.answer(EMAIL)
    assert (await drafted(client, system, {**TASK, "route": "frugal"}))["state"] == "submitted"


async def test_the_dashboard_shows_model_spending_per_route_against_its_budget(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    from tests.web.test_pages import sign_in

    fake.answer(EMAIL, prompt_tokens=200, completion_tokens=100)
    await drafted(client, system, {**TASK, "route": "frugal"})
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://signoff"
    ) as web:
        await sign_in(web, system, "ann", ["*"])
        page = await web.get("/dashboard")
    assert page.status_code == 200
    row = re.search(r'<tr data-route="frugal">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row.group(1))
    assert cells == ["frugal", "1", "200", "100", "0.0015", "$0.0015 of $0.001 (150%)"]


async def test_a_redraft_is_judged_and_summarized_afresh_without_routing_again(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake, surface: RecordingSurface
) -> None:
    fake.answer(EMAIL).answer({"score": 0.5, "rationale": "Too curt."})
    fake.answer({"summary": "Says the refund is done.", "risky_spots": []})
    fake.answer(WARMER).answer({"score": 0.995, "rationale": "Warm and correct."})
    fake.answer({"summary": "Apologizes; says the refund is done.", "risky_spots": []})
    task = await drafted(client, system, {**TASK, "route": "assisted"})
    item_id = task["item_id"]
    await system.service.decide(
        item_id=item_id, action="redraft", actor=REVIEWER, reason_text="too curt"
    )
    assert system.redrafter is not None
    await system.redrafter.drain()

    item = (await client.get(f"/v1/items/{item_id}")).json()
    assert item["revision"] == 2 and item["state"] == "pending"  # 0.995 routes nothing now
    assert item["confidence"] == 0.995 and item["confidence_note"] == "Warm and correct."
    assert item["aid"]["summary"] == "Apologizes; says the refund is done."
    card, _ = surface.updates[-1]
    labels = {f.label: f.value for f in card.fields}
    assert labels["Summary (machine-written)"] == "Apologizes; says the refund is done."
    assert labels["Judge (machine-written)"] == "Warm and correct."
    assert len(fake.requests) == 6


async def test_at_shutdown_a_draft_in_progress_is_handed_back_for_another_process(
    client: httpx.AsyncClient, system: System, fake: OpenAIFake
) -> None:
    from storage import tasks as task_store

    assert system.tasks is not None
    fake.hang().answer(EMAIL)
    created = (await client.post("/v1/tasks", json=TASK)).json()
    for _ in range(1000):  # until the model holds the request (at most 10 s)
        if fake.requests:
            break
        await asyncio.sleep(0.01)

    assert await system.tasks.hand_back() == 1

    async with system.sessions() as session:
        row = await task_store.get_task(session, task_id=created["id"])
    assert row is not None and row.state == "drafting"
    assert row.lease_until == system.clock.now()  # free now, not after the 10-minute lease
    assert await system.tasks.run_due() == 1  # as another replica would, at once
    done = (await client.get(f"/v1/tasks/{created['id']}")).json()
    assert done["state"] == "submitted" and done["attempts"] == 2
