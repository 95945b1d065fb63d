"""bot.client against the real signoff app: the async client in-process, the sync one
over HTTP to uvicorn; decisions are made by reviewers while the client long-polls."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.client import (
    AsyncSignoff,
    Conflict,
    InvalidRequest,
    Item,
    NotFound,
    Rejected,
    ServerError,
    Signoff,
    SignoffConnectionError,
    StillPending,
    Unauthorized,
    UnusableEdit,
    parse_call,
    render_call,
    verify_signature,
)
from bot.ports import Actor
from bot.secrets import sign
from tests.client.conftest import InProcess, LiveServer
from tests.fakes.receiver import Receiver
from tests.process import ROOT

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, done."}


async def submit_email(client: AsyncSignoff, **kw: Any) -> Item:
    return await client.submit(route="ops", kind="email", title="Refund", content=EMAIL, **kw)


# -- submit, get, wait ---------------------------------------------------------------


async def test_submit_and_get(api: InProcess) -> None:
    due = datetime(2026, 1, 6, 17, 0, tzinfo=UTC)
    item = await submit_email(
        api.client, confidence=0.5, metadata={"ticket": "T-1"}, requested_by="bot", due_at=due
    )
    assert item.due_at == due and item.confidence == 0.5
    assert item.id.startswith("itm_") and item.pending and not item.settled
    assert (item.route, item.kind, item.title, item.state) == ("ops", "email", "Refund", "pending")
    assert item.content["subject"] == "Your refund" and item.outcome is None
    assert item.metadata == {"ticket": "T-1"} and item.requested_by == "bot"
    assert item.release_state == "none" and item.decisions == ()
    assert item.created_at is not None and item.created_at.tzinfo is not None
    again = await api.client.get(item.id)
    assert again == item and (await api.client.get(item)).id == item.id


async def test_wait_returns_the_approval(api: InProcess) -> None:
    item = await submit_email(api.client)
    decided = api.decide("approve")
    done = await api.client.wait(item.id, timeout=2)
    await decided
    assert done.state == "approved" and done.outcome == "approved" and done.approved
    assert done.final_content == done.content and done.reason is None
    assert [d.action for d in done.decisions] == ["approve"]
    assert done.decisions[0].actor_name == "lead" and done.decided_at is not None


async def test_wait_returns_the_rejection_with_the_reason(api: InProcess) -> None:
    item = await submit_email(api.client)
    decided = api.decide("reject", reason_code="wrong tone", reason_text="too curt")
    done = await api.client.wait(item, timeout=2)
    await decided
    assert (done.state, done.outcome, done.approved) == ("rejected", "rejected", False)
    assert done.reason == "wrong tone: too curt"


async def test_wait_returns_the_edit(api: InProcess) -> None:
    item = await submit_email(api.client)
    decided = api.decide("edit", content={"subject": "Your refund is on its way"})
    done = await api.client.wait(item, timeout=2)
    await decided
    assert done.outcome == "edited" and done.approved
    assert done.final_content is not None
    assert done.final_content["subject"] == "Your refund is on its way"
    assert done.content["subject"] == "Your refund"
    assert done.approved_content["subject"] == "Your refund is on its way"


async def test_wait_polls_in_rounds(api: InProcess) -> None:
    client = api.other_client(api.api_key, poll_seconds=0.3)
    item = await submit_email(client)
    decided = api.decide("approve", rounds=3)  # a decision during the third long poll
    done = await client.wait(item, timeout=2)
    await decided
    assert done.state == "approved"
    await client.aclose()


async def test_still_pending_after_the_timeout(api: InProcess) -> None:
    item = await submit_email(api.client)
    with pytest.raises(StillPending) as waited:
        await api.client.wait(item, timeout=0.4)
    assert isinstance(waited.value, TimeoutError)
    assert waited.value.item.id == item.id and waited.value.item.pending
    assert "still pending after 0.4 s" in str(waited.value)
    with pytest.raises(StillPending):  # timeout 0: one look, no hold
        await api.client.wait(item, timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        await api.client.wait(item, timeout=-1)


async def test_an_item_decided_by_policy_needs_no_wait(api: InProcess) -> None:
    item = await submit_email(api.client, confidence=0.995)
    assert item.outcome == "auto_approved" and item.approved
    assert (await api.client.wait(item, timeout=0)).outcome == "auto_approved"
    low = await submit_email(api.client, confidence=0.1)
    assert low.outcome == "auto_rejected" and low.reason == "confidence 0.1 < 0.2"


# -- idempotency and retries -----------------------------------------------------------


async def test_a_replay_with_the_same_key_is_the_same_item(api: InProcess) -> None:
    first = await submit_email(api.client, idempotency_key="refund-1234")
    second = await submit_email(api.client, idempotency_key="refund-1234")
    assert second.id == first.id
    page = await api.system.reader.page(integrator_id=None)
    assert [i.id for i in page.items] == [first.id]
    with pytest.raises(Conflict) as other:
        await api.client.submit(
            route="ops",
            kind="message",
            title="x",
            content={"text": "x"},
            idempotency_key="refund-1234",
        )
    assert other.value.status == 409


class LoseAnswers(httpx.AsyncBaseTransport):
    """Hands requests to the app but loses the first ``lose`` answers: the request
    arrived and was acted on, the client saw a timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport, lose: int) -> None:
        self.inner, self.lose = inner, lose
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("idempotency-key"))
        response = await self.inner.handle_async_request(request)
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


async def test_a_lost_answer_is_retried_once_with_the_same_key(api: InProcess) -> None:
    lossy = LoseAnswers(httpx.ASGITransport(app=api.app), lose=1)
    client = AsyncSignoff("http://signoff", api.api_key, transport=lossy)
    item = await submit_email(client)
    assert len(lossy.keys) == 2 and lossy.keys[0] == lossy.keys[1] is not None
    page = await api.system.reader.page(integrator_id=None)
    assert [i.id for i in page.items] == [item.id]  # one item, not two
    lossy.lose = 2
    with pytest.raises(SignoffConnectionError, match="failed twice: ReadTimeout"):
        await client.get(item.id)
    await submit_email(client)
    assert lossy.keys[-1] != lossy.keys[0]  # a new call, a new key
    await client.aclose()


async def test_an_unreachable_server_is_a_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with AsyncSignoff(
        "http://signoff", "sk_x", transport=httpx.MockTransport(refuse)
    ) as client:
        with pytest.raises(SignoffConnectionError, match="POST /v1/items failed twice"):
            await client.submit(route="ops", kind="message", title="x", content={"text": "x"})


async def test_a_server_without_long_polling_is_not_hammered() -> None:
    pending = {"id": "itm_1", "state": "pending", "content": {}}
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pending)

    async with AsyncSignoff(
        "http://signoff", "sk_x", transport=httpx.MockTransport(answer), poll_seconds=5
    ) as client:
        with pytest.raises(StillPending):
            await client.wait("itm_1", timeout=0.3)
    assert len(seen) == 2  # the first round, then one last look at the deadline
    assert seen[0].url.params["wait"] == "0.3" and "wait" not in seen[1].url.params


# -- errors ----------------------------------------------------------------------------


async def test_an_unknown_key_is_unauthorized(api: InProcess) -> None:
    client = api.other_client("sk_not_a_key")
    with pytest.raises(Unauthorized) as refused:
        await client.get("itm_x")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert "unknown API key" in refused.value.message
    await client.aclose()


async def test_an_unknown_item_is_not_found(api: InProcess) -> None:
    with pytest.raises(NotFound) as missing:
        await api.client.get("itm_nope")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert "itm_nope" in missing.value.message
    with pytest.raises(NotFound):  # the id is one path segment, whatever it holds
        await api.client.wait("../items?x=1", timeout=0)


async def test_invalid_content_names_the_field(api: InProcess) -> None:
    with pytest.raises(InvalidRequest) as bad:
        await api.client.submit(
            route="ops", kind="email", title="x", content={"to": ["jane@example.com"], "body": "b"}
        )
    assert (bad.value.status, bad.value.code) == (422, "invalid_input")
    assert bad.value.field == "content.subject" and "Field required" in bad.value.message
    with pytest.raises(InvalidRequest) as route:
        await api.client.submit(route="nope", kind="message", title="x", content={"text": "x"})
    assert route.value.field == "route" and "unknown route 'nope'" in route.value.message
    with pytest.raises(InvalidRequest) as confidence:
        await submit_email(api.client, confidence=1.5)
    assert confidence.value.field == "confidence"


async def test_arguments_that_are_not_json_fail_before_sending(api: InProcess) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        await api.client.submit(route="ops", kind="message", title="x", content={"text": {1j}})
    with pytest.raises(ValueError, match="timezone-aware"):
        await submit_email(api.client, due_at=datetime(2026, 1, 1))


def test_a_non_json_error_answer_keeps_its_status() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with (
        Signoff("http://signoff", "sk_x", transport=httpx.MockTransport(proxy)) as client,
        pytest.raises(ServerError) as failed,
    ):
        client.get("itm_1")
    assert failed.value.status == 502 and failed.value.code == "http_502"
    assert "502 http_502: <html>Bad Gateway</html>" in str(failed.value)


def test_the_client_needs_a_url_and_a_key() -> None:
    with pytest.raises(ValueError, match="api_key"):
        Signoff("http://signoff", " ")
    with pytest.raises(ValueError, match="url"):
        Signoff("", "sk_x")


# -- require_approval, async -----------------------------------------------------------


async def test_an_approved_async_action_runs_with_its_arguments(api: InProcess) -> None:
    sent: list[tuple[Any, ...]] = []

    @api.client.require_approval(route="ops", kind="email", timeout=2)
    async def send_email(to: list[str], subject: str, body: str = "Hi") -> str:
        sent.append((to, subject, body))
        return "sent"

    decided = api.decide("approve")
    recipients = ["jane@example.com"]
    assert await send_email(recipients, "Your refund") == "sent"
    item = await decided
    assert item.kind == "email" and item.content["body"] == "Hi"  # defaults are reviewed
    assert sent == [(recipients, "Your refund", "Hi")] and sent[0][0] is recipients


async def test_an_edited_async_action_runs_with_the_edit(api: InProcess) -> None:
    sent: list[tuple[Any, ...]] = []

    @api.client.require_approval(route="ops", kind="email", timeout=2)
    async def send_email(to: list[str], subject: str, body: str) -> None:
        sent.append((to, subject, body))

    decided = api.decide("edit", content={"body": "Hi Jane, kindly done.", "cc": []})
    await send_email(["jane@example.com"], "Your refund", "Hi Jane, done.")
    await decided
    assert sent == [(["jane@example.com"], "Your refund", "Hi Jane, kindly done.")]


async def test_an_edit_the_function_cannot_take_is_not_run(api: InProcess) -> None:
    ran: list[str] = []

    @api.client.require_approval(route="ops", kind="email", timeout=2)
    async def send_email(to: list[str], subject: str, body: str) -> None:
        ran.append(body)

    decided = api.decide("edit", content={"cc": ["boss@example.com"]})
    with pytest.raises(UnusableEdit, match="the reviewer set 'cc', which send_email does not take"):
        await send_email(["jane@example.com"], "Your refund", "Hi")
    await decided
    assert ran == []


async def test_a_rejected_async_action_raises_with_the_reason(api: InProcess) -> None:
    ran: list[str] = []

    @api.client.require_approval(route="ops", kind="message", timeout=2)
    async def post(text: str) -> None:
        ran.append(text)

    decided = api.decide("reject", reason_code="not needed", reason_text="already posted")
    with pytest.raises(Rejected) as rejected:
        await post(text="v1.2 is out")
    await decided
    assert rejected.value.reason == "not needed: already posted" and ran == []
    assert rejected.value.item.outcome == "rejected"
    assert str(rejected.value) == (
        "The human reviewer rejected this action: not needed: already posted"
    )


async def test_on_reject_return_gives_a_sentence_for_the_model(api: InProcess) -> None:
    async def refund(order_id: int, amount: float) -> str:
        return f"refunded {amount} on {order_id}"

    guarded = api.client.require_approval(route="ops", on_reject="return", timeout=2)(refund)
    decided = api.decide("reject", reason_text="the order was never paid")
    answer = await guarded(1234, 50.0)
    await decided
    assert answer == "The human reviewer rejected this action: the order was never paid"
    impatient = api.client.require_approval(route="ops", on_reject="return", timeout=0.5)
    pending = await impatient(refund)(1234, 50.0)  # nobody decides within 0.5 s
    assert pending.startswith("No human has decided on this action yet (waited 0.5 s")
    assert pending.endswith("It was not performed.")


async def test_a_call_without_a_kind_is_reviewed_as_readable_text(api: InProcess) -> None:
    done: list[tuple[int, float, str]] = []

    @api.client.require_approval(route="ops", timeout=2)
    async def refund(order_id: int, amount: float, note: str = "") -> None:
        done.append((order_id, amount, note))

    decided = api.decide(
        "edit", content={"text": "refund(order_id=1234, amount=25.5, note='half')"}
    )
    await refund(1234, 50.0)
    item = await decided
    assert item.kind == "message" and item.title == "refund(order_id=1234, amount=50.0, note='')"
    assert item.content["text"] == "refund(order_id=1234, amount=50.0, note='')"
    assert item.metadata["call"]["arguments"] == {"order_id": 1234, "amount": 50.0, "note": ""}
    assert done == [(1234, 25.5, "half")]


async def test_an_edited_call_that_does_not_parse_is_not_run(api: InProcess) -> None:
    done: list[int] = []

    @api.client.require_approval(route="ops", on_reject="return", timeout=2)
    async def refund(order_id: int) -> str:
        done.append(order_id)
        return "refunded"

    decided = api.decide("edit", content={"text": "refund(order_id=__import__('os'))"})
    answer = await refund(1234)
    await decided
    assert done == [] and "argument 'order_id' is not a literal value" in answer


async def test_policy_decisions_need_no_reviewer(api: InProcess) -> None:
    @api.client.require_approval(route="ops", kind="message", confidence=0.995, timeout=0)
    async def post(text: str) -> str:
        return text

    assert await post("hello") == "hello"

    @api.client.require_approval(route="ops", kind="message", confidence=0.1, timeout=0)
    async def spam(text: str) -> str:
        return text

    with pytest.raises(Rejected) as rejected:
        await spam("buy now")
    assert str(rejected.value) == "The review policy rejected this action: confidence 0.1 < 0.2"


async def test_methods_and_excluded_arguments_pass_through(api: InProcess) -> None:
    class Mailer:
        def __init__(self) -> None:
            self.sent: list[str] = []

        @api.client.require_approval(route="ops", kind="message", exclude=["log"], timeout=2)
        async def post(self, text: str, log: list[str]) -> None:
            log.append(text)
            self.sent.append(text)

    mailer, log = Mailer(), list[str]()
    decided = api.decide("approve")
    await mailer.post("hello", log=log)
    item = await decided
    assert item.content == {"text": "hello"} and mailer.sent == ["hello"] and log == ["hello"]


def test_bad_decorator_settings_fail_at_once() -> None:
    client = Signoff("http://signoff", "sk_x")
    with pytest.raises(ValueError, match="on_reject"):
        client.require_approval(route="ops", on_reject="ignore")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="exclude names no parameter"):
        client.require_approval(route="ops", exclude=["nope"])(lambda x: x)
    client.close()


# -- human_as_tool, async --------------------------------------------------------------


async def test_human_as_tool_returns_the_edited_answer(api: InProcess) -> None:
    ask = api.client.human_as_tool(route="ops", timeout=2)
    assert ask.__name__ == "ask_human" and "Ask a human" in (ask.__doc__ or "")
    decided = api.decide("edit", content={"text": "The Pro plan, since March."})
    assert await ask("Which plan is Jane on?") == "The Pro plan, since March."
    item = await decided
    assert item.kind == "message" and item.title == "Question: Which plan is Jane on?"
    rejected = api.decide("reject", reason_text="ask the account owner")
    assert await ask("What is her password?") == "ask the account owner"
    await rejected
    approved = api.decide("approve")
    assert await ask("May I close the ticket?") == "approved"
    await approved


# -- the sync client, over HTTP ------------------------------------------------------------


def sync_client(live: LiveServer, **kw: Any) -> Signoff:
    return Signoff(live.url, live.api_key, poll_seconds=1, **kw)


def test_sync_submit_get_wait(live: LiveServer) -> None:
    with sync_client(live) as client:
        item = client.submit(route="ops", kind="email", title="Refund", content=EMAIL)
        assert client.get(item.id).state == "pending"
        decided = live.decide("edit", content={"body": "Hi Jane, it is done."})
        done = client.wait(item.id, timeout=2)
        decided.result(timeout=5)
        assert done.outcome == "edited" and done.final_content is not None
        assert done.final_content["body"] == "Hi Jane, it is done."
        rejected = live.decide("reject", reason_code="wrong tone")
        other = client.submit(route="ops", kind="email", title="Refund", content=EMAIL)
        assert client.wait(other, timeout=2).reason == "wrong tone"
        rejected.result(timeout=5)
        with pytest.raises(StillPending):
            client.wait(
                client.submit(route="ops", kind="message", title="t", content={"text": "t"}),
                timeout=0.3,
            )


def test_sync_replay_and_errors(live: LiveServer) -> None:
    with sync_client(live) as client:
        first = client.submit(
            route="ops", kind="message", title="t", content={"text": "t"}, idempotency_key="k-1"
        )
        again = client.submit(
            route="ops", kind="message", title="t", content={"text": "t"}, idempotency_key="k-1"
        )
        assert again.id == first.id
        with pytest.raises(NotFound):
            client.get("itm_missing")
        with pytest.raises(InvalidRequest) as bad:
            client.submit(route="ops", kind="fax", title="t", content={})
        assert bad.value.field == "kind"
    with Signoff(live.url, "sk_wrong") as stranger, pytest.raises(Unauthorized):
        stranger.get(first.id)
    with Signoff(live.url, live.api_key, timeout=1) as client:
        assert client.get(first.id).id == first.id


def test_sync_decorator_runs_approved_and_edited_calls(live: LiveServer) -> None:
    sent: list[tuple[str, str]] = []
    with sync_client(live) as client:

        @client.require_approval(route="ops", kind="label", timeout=2)
        def tag(text: str, labels: list[str]) -> int:
            sent.append((text, ",".join(labels)))
            return len(labels)

        approved = live.decide("approve")
        assert tag("Where is my refund?", labels=["billing"]) == 1
        approved.result(timeout=5)
        edited = live.decide("edit", content={"labels": ["billing", "urgent"]})
        assert tag("Refund now!", ["billing"]) == 2
        edited.result(timeout=5)
    assert sent == [("Where is my refund?", "billing"), ("Refund now!", "billing,urgent")]


def test_sync_decorator_rejections(live: LiveServer) -> None:
    with sync_client(live) as client:

        @client.require_approval(route="ops", kind="message", timeout=2)
        def post(text: str) -> str:
            raise AssertionError("must not run")

        @client.require_approval(route="ops", kind="message", on_reject="return", timeout=2)
        def post_for_llm(text: str) -> str:
            raise AssertionError("must not run")

        rejected = live.decide("reject", reason_code="wrong tone", reason_text="too loud")
        with pytest.raises(Rejected) as raised:
            post("BUY NOW")
        rejected.result(timeout=5)
        assert raised.value.reason == "wrong tone: too loud"
        rejected = live.decide("reject", reason_text="not today")
        assert post_for_llm("BUY NOW") == "The human reviewer rejected this action: not today"
        rejected.result(timeout=5)


def test_sync_human_as_tool(live: LiveServer) -> None:
    with sync_client(live) as client:
        ask = client.human_as_tool(route="ops", timeout=2)
        decided = live.decide("edit", content={"text": "Yes, refund it."})
        assert ask("Refund order 1234?") == "Yes, refund it."
        decided.result(timeout=5)


async def test_the_sync_client_decorates_async_functions_too(live: LiveServer) -> None:
    client = sync_client(live)

    @client.require_approval(route="ops", kind="message", timeout=2)
    async def post(text: str) -> str:
        await asyncio.sleep(0)
        return f"posted {text}"

    decided = live.decide("approve")
    assert await post("hello") == "posted hello"
    decided.result(timeout=5)
    client.close()


def test_the_async_client_decorates_plain_functions_too(live: LiveServer) -> None:
    client = AsyncSignoff(live.url, live.api_key, poll_seconds=1)

    @client.require_approval(route="ops", kind="message", timeout=2)
    def post(text: str) -> str:
        return f"posted {text}"

    decided = live.decide("edit", content={"text": "hello, world"})
    assert post("hello") == "posted hello, world"
    decided.result(timeout=5)
    asyncio.run(client.aclose())


# -- verify_signature ------------------------------------------------------------------


async def test_a_real_callback_verifies(api: InProcess) -> None:
    receiver = await Receiver().start()
    try:
        item = await submit_email(api.client, callback_url=f"{receiver.url}/signoff")
        await api.system.service.decide(
            item_id=item.id, action="approve", actor=Actor(surface="web", user_id="a", name="a")
        )
        assert await api.system.worker.run_once() == 1
    finally:
        await receiver.stop()
    [callback] = receiver.received
    header, body = callback.headers["Signoff-Signature"], callback.body
    assert json.loads(body)["event"] == "item.decided"
    sent_at = int(header.split(",")[0].removeprefix("t="))
    assert verify_signature(api.secret, header, body, now=sent_at + 5)
    assert not verify_signature(api.secret, header, body + b"\n", now=sent_at + 5)
    assert not verify_signature(api.secret, header, body, now=sent_at + 301)
    assert not verify_signature(api.api_key, header, body, now=sent_at)


SECRET = "whsec_test"
BODY = b'{"event":"item.released","item":{"id":"itm_1"}}'
NOW = 1_767_600_000


def test_a_good_signature_verifies() -> None:
    header = sign(secret=SECRET, body=BODY, timestamp=NOW)
    assert verify_signature(SECRET, header, BODY, now=NOW)
    assert verify_signature(SECRET.encode(), header, BODY.decode(), now=NOW + 299)
    assert verify_signature(SECRET, header, BODY, now=NOW - 300)  # clocks differ both ways


def test_a_wrong_secret_or_body_does_not() -> None:
    header = sign(secret=SECRET, body=BODY, timestamp=NOW)
    assert not verify_signature("whsec_other", header, BODY, now=NOW)
    assert not verify_signature(SECRET, header, BODY + b" ", now=NOW)


def test_a_stale_signature_is_refused() -> None:
    header = sign(secret=SECRET, body=BODY, timestamp=NOW)
    assert not verify_signature(SECRET, header, BODY, now=NOW + 301)
    assert not verify_signature(SECRET, header, BODY, now=NOW - 301)
    assert verify_signature(SECRET, header, BODY, now=NOW + 3000, tolerance=3600)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=,v1=",
        "v1=abc",
        f"t={NOW}",
        f"t=abc,v1={'0' * 64}",
        f"t=-{NOW},v1={'0' * 64}",
        f"t={NOW},v1=é",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        ",,,=,==",
        f"t={'9' * 40},v1=00",
    ],
)
def test_a_malformed_header_is_refused_without_raising(header: str | None) -> None:
    assert verify_signature(SECRET, header, BODY, now=NOW) is False


def test_extra_parts_and_several_signatures_are_tolerated() -> None:
    good = sign(secret=SECRET, body=BODY, timestamp=NOW).split(",v1=")[1]
    other = sign(secret="whsec_old", body=BODY, timestamp=NOW).split(",v1=")[1]
    assert verify_signature(SECRET, f"t={NOW}, v1={other}, v1={good}, v0=x, k", BODY, now=NOW)
    assert verify_signature(SECRET, f"v2=abc,v1={good},t={NOW}", BODY, now=NOW)
    assert not verify_signature(SECRET, f"t={NOW},v1={other},v0={good}", BODY, now=NOW)


# -- the pure parts ----------------------------------------------------------------------


def test_calls_render_and_parse_back() -> None:
    args = {"order_id": 1234, "amount": 50.0, "tags": ["a", "b"], "note": None, "ok": True}
    text = render_call("refund", args)
    assert text == "refund(order_id=1234, amount=50.0, tags=['a', 'b'], note=None, ok=True)"
    assert parse_call("refund", text, expected=args) == args
    long = render_call("post", {"text": "x" * 100, "n": 1})
    assert long.splitlines()[0] == "post(" and long.splitlines()[2] == "    n=1,"
    assert parse_call("post", long, expected={"text": "", "n": 0}) == {"text": "x" * 100, "n": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refund(", "does not parse"),
        ("1 + 2", "not a call of refund"),
        ("other(order_id=1)", "names other, not refund"),
        ("refund(1)", "every argument as name=value"),
        ("refund(**x)", "every argument as name=value"),
        ("refund(order_id=1, extra=2)", "no argument 'extra'"),
        ("refund()", "leaves out order_id"),
        ("refund(order_id=open('x'))", "not a literal value"),
    ],
)
def test_edited_calls_that_cannot_be_applied(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_call("refund", text, expected={"order_id": 1})


def test_an_item_from_a_newer_or_older_server() -> None:
    item = Item.from_json({"id": "itm_1", "state": "pending", "shiny": 1})
    assert item.pending and item.raw["shiny"] == 1 and item.decisions == ()
    assert item.content == {} and item.quorum == 1 and item.created_at is None


def test_an_item_expired_by_policy() -> None:
    def expired(effect: str) -> Item:
        decision = {
            "action": "expire",
            "reason_code": effect,
            "reason_text": f"after 24 h — {effect} by policy",
        }
        return Item.from_json(
            {"id": "i", "state": "expired", "outcome": "expired", "decisions": [decision]}
        )

    assert expired("approve").approved and expired("approve").reason is None
    rejected = expired("reject")
    assert not rejected.approved and rejected.reason == "expired: after 24 h — reject by policy"


def test_importing_the_client_loads_no_server_code() -> None:
    code = (
        "import sys, bot.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'starlette', 'sqlalchemy', 'sqlmodel', 'pydantic', 'storage', 'bot'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['bot', 'bot.client']"
