"""OpenAIDrafter with the real ``openai`` client against the loopback OpenAI fake, and the
core parts it stands on (bot.drafting: schema, parsing, prompts, prices)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest

from adapters.llm.openai_drafter import OpenAIDrafter, openai_drafter
from bot.drafting import (
    JUDGE_SCHEMA,
    SUMMARY_SCHEMA,
    Draft,
    DraftFailed,
    Price,
    PriceTable,
    Revision,
    Usage,
    parse_content,
    schema_for,
)
from bot.errors import ConfigError, InvalidInput
from bot.kinds import KINDS
from tests.fakes.openai import OpenAIFake, strict_schema_problem

MODEL = "gpt-test"
PRICES = PriceTable({MODEL: Price(input_per_million=2.50, output_per_million=10.00)})

EMAIL = {
    "to": ["jane@example.com"],
    "cc": None,
    "subject": "Your refund for order 1234",
    "body": "Hi Jane,\n\nwe have refunded order 1234 in full.\n\nBest, Support",
    "html": None,
}
DIFF = "\n".join(
    [
        "--- a/app/pricing.py",
        "+++ b/app/pricing.py",
        "@@ -1,2 +1,2 @@",
        " def refund(total):",
        "-    return total * 0.9",
        "+    return total",
        "",
    ]
)
# one valid answer per kind, as a strict-schema model would give it (nulls for defaults)
ANSWERS: dict[str, dict[str, Any]] = {
    "email": EMAIL,
    "code_change": {
        "repository": "acme/shop",
        "base": None,
        "title": "Refund the full amount",
        "description": None,
        "diff": DIFF,
    },
    "message": {"text": "The deploy is done."},
    "decision": {"question": "Refund order 1234?", "options": ["yes", "no"], "proposed": "yes"},
    "label": {"text": "My parcel never arrived", "labels": ["shipping"]},
}
CONTEXT = {"customer": "Jane", "order": 1234, "ticket": "T-1234: where is my refund?"}


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake() as fake:
        yield fake


@pytest.fixture
async def client(fake: OpenAIFake) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1")
    yield client
    await client.close()


MakeDrafter = Callable[..., OpenAIDrafter]


@pytest.fixture
def make(client: openai.AsyncOpenAI) -> MakeDrafter:
    def make(**overrides: Any) -> OpenAIDrafter:
        options: dict[str, Any] = {"model": MODEL, "prices": PRICES, "timeout": 5} | overrides
        return OpenAIDrafter(client=client, **options)

    return make


@pytest.fixture
def drafter(make: MakeDrafter) -> OpenAIDrafter:
    return make()


async def draft_email(drafter: OpenAIDrafter, **extra: Any) -> Draft:
    return await drafter.draft(
        kind="email",
        instructions="Tell Jane her order was refunded.",
        context=CONTEXT,
        **extra,
    )


# ---------------------------------------------------------------------- drafts


async def test_an_email_draft_validates_and_the_request_carries_the_schema(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer(EMAIL)

    draft = await draft_email(drafter)

    assert draft.content == {**EMAIL, "cc": [], "html": None}  # null: the default
    assert draft.attempts == 1
    assert draft.model == MODEL
    [request] = fake.requests
    assert request.body["model"] == MODEL
    assert request.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "email_draft", "strict": True, "schema": schema_for("email")},
    }
    assert request.schema is not None and strict_schema_problem(request.schema) is None
    assert set(request.schema["properties"]) == {"to", "cc", "subject", "body", "html"}
    system, user = request.messages
    assert system["role"] == "system" and "'email'" in system["content"]
    for name in ("to", "cc", "subject", "body", "html"):
        assert f"- {name} (" in system["content"]
    assert user["role"] == "user"
    assert "Tell Jane her order was refunded." in user["content"]
    assert '"ticket": "T-1234: where is my refund?"' in user["content"]
    assert draft.prompt == request.messages


async def test_a_string_context_is_sent_as_it_is(fake: OpenAIFake, drafter: OpenAIDrafter) -> None:
    fake.answer(ANSWERS["message"])
    await drafter.draft(kind="message", instructions="Say it's done.", context="deploy #42 ok")
    assert fake.requests[0].messages[1]["content"].endswith("Context:\ndeploy #42 ok")


@pytest.mark.parametrize("kind", sorted(ANSWERS))
async def test_each_kind_has_a_strict_schema_and_a_valid_answer_passes(
    fake: OpenAIFake, drafter: OpenAIDrafter, kind: str
) -> None:
    fake.answer(ANSWERS[kind])
    draft = await drafter.draft(kind=kind, instructions="Draft it.", context=CONTEXT)
    assert draft.attempts == 1
    assert fake.requests[0].status == 200  # the fake found the schema strict-valid
    assert {k: v for k, v in ANSWERS[kind].items() if v is not None}.items() <= (
        draft.content.items()
    )


async def test_an_invalid_answer_is_asked_again_with_the_problem(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer({**EMAIL, "to": ["jane at example"]}).answer(EMAIL)

    draft = await draft_email(drafter)

    assert draft.attempts == 2
    assert draft.content["to"] == ["jane@example.com"]
    first, second = fake.requests
    assert second.messages[:2] == first.messages
    assert second.messages[2]["role"] == "assistant"
    assert json.loads(second.messages[2]["content"])["to"] == ["jane at example"]
    correction = second.messages[3]
    assert correction["role"] == "user"
    assert "content.to.0" in correction["content"]
    assert "not an e-mail address" in correction["content"]
    assert draft.prompt == first.messages  # the clean prompt, without the correction round


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({**EMAIL, "to": ["jane at example"]}, "content.to.0: Value error, not an e-mail address"),
        ({**EMAIL, "subject": ""}, "content.subject"),
        ({k: v for k, v in EMAIL.items() if k != "body"}, "content.body: Field required"),
        ({**EMAIL, "bcc": ["x@example.com"]}, "content.bcc: Extra inputs are not permitted"),
        ('{"to": ["jane@example.com"], "subj', "the answer is not JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
async def test_two_invalid_answers_fail_naming_the_problem(
    fake: OpenAIFake, drafter: OpenAIDrafter, answer: Any, named: str
) -> None:
    fake.answer(answer).answer(answer)
    with pytest.raises(DraftFailed) as failed:
        await draft_email(drafter)
    assert named in failed.value.message
    assert "invalid twice" in failed.value.message
    assert not failed.value.retryable
    assert len(fake.requests) == 2


async def test_a_rule_beyond_the_schema_is_checked_too(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    not_a_diff = {**ANSWERS["code_change"], "diff": "just make refunds full"}
    fake.answer(not_a_diff).answer(not_a_diff)
    with pytest.raises(DraftFailed, match="diff must be a unified diff"):
        await drafter.draft(kind="code_change", instructions="Fix refunds.", context="")


async def test_a_cut_off_answer_is_asked_again(fake: OpenAIFake, drafter: OpenAIDrafter) -> None:
    fake.answer('{"to": ["jane@exa', finish_reason="length").answer(EMAIL)
    draft = await draft_email(drafter)
    assert draft.attempts == 2
    assert "cut off" in fake.requests[1].messages[-1]["content"]


async def test_a_refusal_fails_at_once(fake: OpenAIFake, drafter: OpenAIDrafter) -> None:
    fake.answer(None, refusal="I can't help with that.")
    with pytest.raises(DraftFailed, match=re.escape("the model refused: I can't help with that.")):
        await draft_email(drafter)
    assert len(fake.requests) == 1


async def test_an_unknown_kind_fails_before_any_request(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    with pytest.raises(InvalidInput, match="unknown kind 'tweet'"):
        await drafter.draft(kind="tweet", instructions="x", context="y")
    assert fake.requests == []


# ---------------------------------------------------------------------- redraft


async def test_a_redraft_shows_the_earlier_drafts_and_the_reviewers_reasons(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    first = {**EMAIL, "cc": [], "subject": "Refund"}
    second = {**EMAIL, "cc": [], "subject": "Your refund"}
    fake.answer(EMAIL)

    await draft_email(
        drafter,
        feedback=[
            Revision(first, "Too curt."),
            Revision(second, "Say when the money arrives"),
        ],
    )

    roles = [m["role"] for m in fake.requests[0].messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    messages = fake.requests[0].messages
    assert json.loads(messages[2]["content"]) == first
    assert messages[3]["content"] == (
        "The reviewer rejected this draft: Too curt. Write a better one."
    )
    assert json.loads(messages[4]["content"]) == second
    assert messages[5]["content"] == (
        "The reviewer rejected this draft: Say when the money arrives. Write a better one."
    )


# ---------------------------------------------------------------------- the API failing


async def test_a_rate_limit_is_retried_by_the_client(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.error(429, retry_after="0").answer(EMAIL)
    draft = await draft_email(drafter)
    assert draft.attempts == 1  # one answer from the model; the 429 was the client's business
    assert [r.status for r in fake.requests] == [429, 200]


async def test_retry_after_is_honoured(fake: OpenAIFake, drafter: OpenAIDrafter) -> None:
    fake.error(429, retry_after="1").answer(EMAIL)
    started = time.monotonic()
    await draft_email(drafter)
    # the client's own backoff for a first retry is at most 0.5 s; Retry-After says 1 s
    assert time.monotonic() - started >= 0.95


async def test_a_server_error_is_retried(fake: OpenAIFake, drafter: OpenAIDrafter) -> None:
    fake.error(500).error(503).answer(EMAIL)
    await draft_email(drafter)
    assert [r.status for r in fake.requests] == [500, 503, 200]


async def test_rate_limits_beyond_the_retries_fail_retryably(
    fake: OpenAIFake, make: MakeDrafter
) -> None:
    fake.error(429, retry_after="0").error(429, retry_after="0")
    with pytest.raises(DraftFailed) as failed:
        await draft_email(make(max_retries=1))
    assert failed.value.retryable
    assert "answered 429 (2 tries)" in failed.value.message
    assert "Rate limit reached" in failed.value.message
    assert len(fake.requests) == 2


async def test_a_refused_request_is_not_retried(fake: OpenAIFake) -> None:
    fake.answer(EMAIL)
    bad_key = openai.AsyncOpenAI(api_key="sk-wrong", base_url=f"{fake.url}/v1")
    drafter = OpenAIDrafter(client=bad_key, model=MODEL, prices=PRICES)
    try:
        with pytest.raises(DraftFailed, match="answered 401: Incorrect API key") as failed:
            await draft_email(drafter)
    finally:
        await drafter.aclose()
    assert not failed.value.retryable
    assert len(fake.requests) == 1


async def test_a_model_that_never_answers_times_out(fake: OpenAIFake, make: MakeDrafter) -> None:
    fake.hang()
    started = time.monotonic()
    with pytest.raises(DraftFailed) as failed:
        await draft_email(make(timeout=0.5, max_retries=0))
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2
    assert failed.value.message == "model did not answer within 0.5 s (1 try)"
    assert failed.value.retryable


async def test_a_timeout_is_retried_by_the_client(fake: OpenAIFake, make: MakeDrafter) -> None:
    fake.hang().answer(EMAIL)
    draft = await draft_email(make(timeout=0.3, max_retries=1))
    assert draft.content["to"] == ["jane@example.com"]
    assert [r.status for r in fake.requests] == [0, 200]  # the first never got an answer


# ---------------------------------------------------------------------- usage and cost


async def test_usage_sums_every_attempt_and_is_priced(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer({**EMAIL, "to": []}, prompt_tokens=1_000, completion_tokens=200)
    fake.answer(EMAIL, prompt_tokens=1_500, completion_tokens=300)

    draft = await draft_email(drafter)

    assert draft.usage.input_tokens == 2_500
    assert draft.usage.output_tokens == 500
    assert draft.usage.cost == pytest.approx(2_500 * 2.50 / 1e6 + 500 * 10.00 / 1e6)
    assert draft.usage.cost == pytest.approx(0.01125)


async def test_a_failed_draft_reports_what_it_spent(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer("nope", prompt_tokens=400, completion_tokens=1)
    fake.answer("nope", prompt_tokens=600, completion_tokens=1)
    with pytest.raises(DraftFailed) as failed:
        await draft_email(drafter)
    assert failed.value.usage == PRICES.usage(MODEL, 1_000, 2)


# ---------------------------------------------------------------------- judge, summarize


async def test_judge_parses_score_and_rationale(fake: OpenAIFake, drafter: OpenAIDrafter) -> None:
    fake.answer({"score": 0.8, "rationale": "Polite and\nclear."}, completion_tokens=20)

    judgement = await drafter.judge(
        content=EMAIL, kind="email", rubric="Polite; states the refund amount."
    )

    assert judgement.score == 0.8
    assert judgement.rationale == "Polite and clear."
    assert judgement.usage.output_tokens == 20
    [request] = fake.requests
    assert request.response_format is not None
    assert request.response_format["json_schema"] == {
        "name": "judgement",
        "strict": True,
        "schema": JUDGE_SCHEMA,
    }
    assert "Polite; states the refund amount." in request.messages[1]["content"]
    assert "Your refund for order 1234" in request.messages[1]["content"]


async def test_judge_asks_again_for_a_score_out_of_range(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer({"score": 8, "rationale": "Good."}).answer({"score": 1, "rationale": "Good."})
    judgement = await drafter.judge(content=EMAIL, kind="email", rubric="Polite.")
    assert judgement.score == 1.0
    assert "score: must be from 0 to 1, not 8" in fake.requests[1].messages[-1]["content"]


async def test_summarize_a_code_change_lists_risky_spots(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer(
        {
            "summary": "Refunds now return the full amount.",
            "risky_spots": ["app/pricing.py: refund() drops the 10% fee", "  "],
        }
    )

    aid = await drafter.summarize(content=ANSWERS["code_change"], kind="code_change")

    assert aid.summary == "Refunds now return the full amount."
    assert aid.risky_spots == ("app/pricing.py: refund() drops the 10% fee",)
    assert aid.usage.input_tokens > 0
    request = fake.requests[0]
    assert request.schema == SUMMARY_SCHEMA
    assert "risky spots" in request.messages[0]["content"]
    assert "+    return total" in request.messages[1]["content"]


async def test_summarize_other_kinds_has_no_risky_spots(
    fake: OpenAIFake, drafter: OpenAIDrafter
) -> None:
    fake.answer({"summary": "Tells Jane\nher refund is done.", "risky_spots": ["the tone"]})
    aid = await drafter.summarize(content=EMAIL, kind="email")
    assert aid.summary == "Tells Jane her refund is done."
    assert aid.risky_spots == ()
    assert "leave risky_spots empty" in fake.requests[0].messages[0]["content"]


# ---------------------------------------------------------------------- construction


async def test_the_factory_builds_a_client_for_a_base_url(fake: OpenAIFake) -> None:
    fake.answer(EMAIL)
    drafter = openai_drafter(
        api_key=fake.api_key, base_url=f"{fake.url}/v1", model=MODEL, prices=PRICES, timeout=5
    )
    try:
        draft = await draft_email(drafter)
    finally:
        await drafter.aclose()
    assert draft.content["subject"] == EMAIL["subject"]
    assert fake.requests[0].headers["authorization"] == f"Bearer {fake.api_key}"


def test_the_factory_needs_a_key_or_a_local_server() -> None:
    with pytest.raises(ConfigError, match="API key"):
        openai_drafter(api_key="", model=MODEL, prices=PRICES)


def test_a_model_without_a_price_fails_at_construction(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(ConfigError, match="no price for model 'gpt-other' \\(priced: gpt-test\\)"):
        OpenAIDrafter(client=client, model="gpt-other", prices=PRICES)


# ---------------------------------------------------------------------- core parts


def test_price_table() -> None:
    prices = PriceTable({"big": Price(5, 15), "local": Price(0, 0)})
    assert prices.cost("big", 1_000_000, 1_000_000) == 20
    assert prices.cost("big", 2_000, 100) == pytest.approx(0.0115)
    assert prices.usage("local", 10, 5) == Usage(10, 5, 0.0)
    assert Usage(1, 2, 0.5) + Usage(3, 4, 0.25) == Usage(4, 6, 0.75)
    with pytest.raises(ConfigError):
        prices.cost("gpt-none", 1, 1)


FORBIDDEN = {"default", "minLength", "maxLength", "title", "format", "minItems"}


def walk(node: Any) -> list[dict[str, Any]]:
    """Every schema node under ``node`` (not the name maps of properties and $defs)."""
    if isinstance(node, list):
        return [n for v in node for n in walk(v)]
    if not isinstance(node, dict):
        return []
    nodes = [node]
    for key, value in node.items():
        if key in ("properties", "$defs"):
            nodes += [n for sub in value.values() for n in walk(sub)]
        elif key in ("items", "anyOf"):
            nodes += walk(value)
    return nodes


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_for_is_strict(kind: str) -> None:
    schema = schema_for(kind)
    assert strict_schema_problem(schema) is None
    for node in walk(schema):
        assert not FORBIDDEN & node.keys()
    pydantic = KINDS[kind].schema.model_json_schema()
    assert FORBIDDEN & {key for node in walk(pydantic) for key in node}  # the check bites
    assert schema["required"] == list(pydantic["properties"])
    for name, prop in schema["properties"].items():
        nullable = "anyOf" in prop and {"type": "null"} in prop["anyOf"]
        assert nullable == (name not in pydantic["required"]), name


def test_schema_for_keeps_constraints_as_descriptions_and_returns_a_copy() -> None:
    schema = schema_for("email")
    assert "at least 1 item" in schema["properties"]["to"]["description"]
    assert "at most 998 characters" in schema["properties"]["subject"]["description"]
    base = schema_for("code_change")["properties"]["base"]
    assert 'null for the default ("main")' in base["description"]
    schema["properties"].clear()
    assert schema_for("email")["properties"]


def test_parse_content_drops_nulls_of_optional_fields_only() -> None:
    assert parse_content("code_change", json.dumps(ANSWERS["code_change"]))["base"] == "main"
    with pytest.raises(InvalidInput, match=r"content\.subject"):
        parse_content("email", json.dumps({**EMAIL, "subject": None}))
