"""The OpenAI fake's own checks, with plain HTTP requests (httpx), no OpenAI client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.openai import OpenAIFake, strict_schema_problem

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    },
    "required": ["text", "n"],
    "additionalProperties": False,
}


def body(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "reply", "strict": True, "schema": SCHEMA},
        },
    }
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake() as fake:
        yield fake


@pytest.fixture
async def http(fake: OpenAIFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{fake.url}/v1",
        headers={"Authorization": f"Bearer {fake.api_key}"},
        timeout=5,
        trust_env=False,
    ) as client:
        yield client


async def test_answers_with_the_chat_completion_shape(
    fake: OpenAIFake, http: httpx.AsyncClient
) -> None:
    fake.answer({"text": "Hello", "n": None}, prompt_tokens=12, completion_tokens=5)

    response = await http.post("/chat/completions", json=body())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-test"
    [choice] = data["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["refusal"] is None
    assert choice["message"]["content"] == '{"text": "Hello", "n": null}'  # JSON-encoded
    assert data["usage"] == {
        **data["usage"],
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
    }
    [seen] = fake.requests
    assert seen.status == 200
    assert seen.headers["authorization"] == f"Bearer {fake.api_key}"
    assert seen.messages[1] == {"role": "user", "content": "Hi"}
    assert seen.schema == SCHEMA
    assert fake.pending == 0


async def test_usage_defaults_to_an_estimate_and_text_answers_pass_through(
    fake: OpenAIFake, http: httpx.AsyncClient
) -> None:
    fake.answer("plain text, not JSON")
    data = (await http.post("/chat/completions", json=body(response_format=None))).json()
    assert data["choices"][0]["message"]["content"] == "plain text, not JSON"
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_a_refusal_and_a_finish_reason(fake: OpenAIFake, http: httpx.AsyncClient) -> None:
    fake.answer(None, refusal="I can't help with that.").answer("{", finish_reason="length")
    first = (await http.post("/chat/completions", json=body())).json()["choices"][0]
    second = (await http.post("/chat/completions", json=body())).json()["choices"][0]
    assert first["message"] == {
        **first["message"],
        "content": None,
        "refusal": "I can't help with that.",
    }
    assert second["finish_reason"] == "length"


async def test_scripted_errors_carry_openais_shape_and_retry_after(
    fake: OpenAIFake, http: httpx.AsyncClient
) -> None:
    fake.error(429, retry_after="3").error(500).answer("{}")

    limited = await http.post("/chat/completions", json=body())
    broken = await http.post("/chat/completions", json=body())
    fine = await http.post("/chat/completions", json=body())

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert broken.status_code == 500
    assert broken.json()["error"]["type"] == "server_error"
    assert "retry-after" not in broken.headers
    assert fine.status_code == 200
    assert [r.status for r in fake.requests] == [429, 500, 200]


async def test_an_empty_script_says_so(fake: OpenAIFake, http: httpx.AsyncClient) -> None:
    response = await http.post("/chat/completions", json=body())
    assert response.status_code == 400
    assert "no scripted answer" in response.json()["error"]["message"]


async def test_a_hanging_request_times_out_and_stop_does_not_wait(fake: OpenAIFake) -> None:
    fake.hang()
    async with httpx.AsyncClient(timeout=0.3, trust_env=False) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                f"{fake.url}/v1/chat/completions",
                json=body(),
                headers={"Authorization": f"Bearer {fake.api_key}"},
            )
        assert time.monotonic() - started < 2
    assert fake.requests[0].status == 0  # recorded, never answered
    await asyncio.wait_for(fake.stop(), timeout=5)


async def test_a_wrong_or_missing_key_is_refused(fake: OpenAIFake) -> None:
    fake.answer("{}")
    async with httpx.AsyncClient(base_url=f"{fake.url}/v1", trust_env=False) as client:
        missing = await client.post("/chat/completions", json=body())
        wrong = await client.post(
            "/chat/completions", json=body(), headers={"Authorization": "Bearer sk-nope"}
        )
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert fake.pending == 1  # refused requests use no step


async def test_an_unknown_path_is_404(fake: OpenAIFake, http: httpx.AsyncClient) -> None:
    response = await http.post("/completions", json=body())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"messages": None}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": [{"content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "bot", "content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": {"x": 1}}]}, "messages[0].content"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_object"}}, "messages"),  # no word "json"
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}},
            "response_format.json_schema.name",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "has space", "schema": SCHEMA},
                }
            },
            "response_format.json_schema.name",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "r"}}},
            "response_format.json_schema.schema",
        ),
        ({"stream": True}, "stream"),
    ],
)
async def test_malformed_requests_get_a_400_in_openais_shape(
    fake: OpenAIFake, http: httpx.AsyncClient, overrides: dict[str, Any], param: str
) -> None:
    fake.answer("{}")
    response = await http.post("/chat/completions", json=body(**overrides))  # None: left out
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    assert fake.pending == 1
    assert fake.requests[-1].status == 400


async def test_a_body_that_is_not_json_is_refused(
    fake: OpenAIFake, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]


async def test_a_strict_schema_is_checked_a_loose_one_is_not(
    fake: OpenAIFake, http: httpx.AsyncClient
) -> None:
    loose = {"type": "object", "properties": {"text": {"type": "string", "minLength": 1}}}
    fake.answer("{}")
    strict = body(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "reply", "strict": True, "schema": loose},
        }
    )
    refused = await http.post("/chat/completions", json=strict)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "response_format"
    assert error["message"].startswith("Invalid schema for response_format 'reply': ")
    assert "additionalProperties" in error["message"]

    strict["response_format"]["json_schema"]["strict"] = False
    assert (await http.post("/chat/completions", json=strict)).status_code == 200


def closed(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"anyOf": [closed({})]}, 'type: "object"'),
        ({"type": "object", "properties": {}, "required": []}, "'additionalProperties'"),
        (
            {**closed({"a": {"type": "string"}, "b": {"type": "string"}}), "required": ["a"]},
            "Missing 'b'",
        ),
        ({**closed({"a": {"type": "string"}}), "required": ["a", "z"]}, "Extra required key 'z'"),
        (closed({"a": {"type": "string", "minLength": 1}}), "'minLength' is not permitted"),
        (closed({"a": {"type": "string", "default": "x"}}), "'default' is not permitted"),
        (closed({"a": {"type": "string", "format": "uri"}}), "format 'uri' is not permitted"),
        (closed({"a": {"description": "no type"}}), "must have a 'type'"),
        (
            closed({"a": {"type": "object", "properties": {"b": {"type": "string"}}}}),
            "In context=('properties', 'a'), 'additionalProperties'",
        ),
        (
            closed({"a": {"type": "array", "items": {"type": "object", "properties": {}}}}),
            "In context=('properties', 'a', 'items')",
        ),
        (
            closed({"a": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}}),
            "'maxLength' is not permitted",
        ),
    ],
)
def test_strict_schema_problems(schema: dict[str, Any], problem: str) -> None:
    found = strict_schema_problem(schema)
    assert found is not None and problem in found, found


def test_a_strict_schema_passes() -> None:
    nested = closed({"b": {"type": "array", "items": {"type": "string"}, "minItems": 1}})
    schema = closed(
        {
            "a": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
            "n": nested,
            "r": {"$ref": "#/$defs/thing"},
        },
        **{"$defs": {"thing": closed({"x": {"type": "integer", "minimum": 0}})}},
    )
    assert strict_schema_problem(schema) is None
    assert strict_schema_problem(SCHEMA) is None
