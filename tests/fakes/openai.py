"""A loopback fake of OpenAI's ``POST /v1/chat/completions`` (aiohttp), for the real client.

::

    async with OpenAIFake() as fake:
        fake.answer({"text": "Hello"})                 # a dict is sent JSON-encoded
        fake.error(429, retry_after="0").answer("{}")  # a rate limit, then an answer
        client = openai.AsyncOpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1")
        ...
        assert fake.requests[0].schema["additionalProperties"] is False

Each request takes the next step of the script: :meth:`OpenAIFake.answer` (content, token
counts, ``finish_reason``, a refusal), :meth:`OpenAIFake.error` (a status with OpenAI's
error body, ``Retry-After`` when given) or :meth:`OpenAIFake.hang` (no answer until the
fake stops). With the script empty the fake answers 400 saying so.

Before that, the request is checked as OpenAI checks it, and a malformed one gets a 400
with OpenAI's error shape (``{"error": {"message", "type", "param", "code"}}``) without
using up a step: ``Authorization: Bearer <api_key>`` (else 401 ``invalid_api_key``), a
JSON object body, ``model`` a non-empty string, ``messages`` a non-empty list of
``{role, content}``, and a ``response_format`` of a known type; a ``json_schema`` format
needs ``name`` (``[a-zA-Z0-9_-]{1,64}``) and ``schema``, and with ``strict: true`` the
schema must be what strict structured outputs accept (:func:`strict_schema_problem`:
every object closed with ``additionalProperties: false`` and every property required, no
keyword outside the supported subset, such as ``default`` or ``minLength``).

Answers have the real Chat Completions shape (``id``, ``object: "chat.completion"``,
``created``, ``model``, ``choices[{index, message{role, content, refusal}, logprobs,
finish_reason}]``, ``usage{prompt_tokens, completion_tokens, total_tokens}``). Every
request, well-formed or not, is recorded in :attr:`OpenAIFake.requests`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

ROLES = ("system", "developer", "user", "assistant", "tool")
FORMATS = ("text", "json_object", "json_schema")
SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# The JSON-schema subset strict structured outputs support (OpenAI's guide).
SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "enum",
        "const",
        "description",
        "title",
        "$defs",
        "definitions",
        "$ref",
        "pattern",
        "format",
        "multipleOf",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
    }
)
STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
MAX_DEPTH = 10
MAX_PROPERTIES = 5000

ERROR_MESSAGES = {
    429: ("Rate limit reached for requests. Please try again later.", "requests"),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error"),
}


@dataclass
class ChatRequest:
    """One request as the fake saw it; ``status`` and ``response`` once answered (0 and
    None while it hangs)."""

    headers: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.body.get("response_format") if isinstance(self.body, dict) else None

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema of a ``json_schema`` response format."""
        fmt = self.response_format or {}
        return (fmt.get("json_schema") or {}).get("schema")


@dataclass
class _Step:
    status: int = 200
    content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    hang: bool = False


class _Invalid(Exception):
    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


class OpenAIFake:
    def __init__(self, *, api_key: str = "sk-fake-openai-key", served_model: str | None = None):
        self.api_key = api_key
        self.served_model = served_model  # the model name answers carry (default: as asked)
        self.requests: list[ChatRequest] = []
        self.url = ""
        self._script: list[_Step] = []
        self._ids = itertools.count(1)
        self._released: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> OpenAIFake:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._released is not None:
            self._released.set()  # let hanging requests end, so cleanup does not wait
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAIFake:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the script

    def answer(
        self,
        content: str | Mapping[str, Any] | None,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        finish_reason: str = "stop",
        refusal: str | None = None,
    ) -> OpenAIFake:
        """Answer the next request with ``content`` (a mapping is JSON-encoded). Token
        counts default to a rough estimate from the text (4 characters a token)."""
        text = json.dumps(content) if isinstance(content, Mapping) else content
        self._script.append(
            _Step(
                content=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=finish_reason,
                refusal=refusal,
            )
        )
        return self

    def error(
        self, status: int, *, retry_after: str | float | None = None, message: str | None = None
    ) -> OpenAIFake:
        """Answer the next request with ``status`` and OpenAI's error body."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self._script.append(_Step(status=status, headers=headers, message=message))
        return self

    def hang(self) -> OpenAIFake:
        """Never answer the next request (until the fake stops)."""
        self._script.append(_Step(hang=True))
        return self

    @property
    def pending(self) -> int:
        """Steps of the script not used yet."""
        return len(self._script)

    # ------------------------------------------------------------------ serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = ChatRequest(headers={k.lower(): v for k, v in request.headers.items()}, body=body)
        self.requests.append(record)
        try:
            if request.method != "POST" or request.path != "/v1/chat/completions":
                raise _Invalid(
                    f"Invalid URL ({request.method} {request.path})",
                    code="unknown_url",
                    status=404,
                )
            self._check_auth(request)
            self._check_body(body)
        except _Invalid as exc:
            return self._respond(record, exc.status, _error(exc.message, exc.param, exc.code))
        if not self._script:
            return self._respond(
                record,
                400,
                _error("the OpenAI fake has no scripted answer left (see OpenAIFake.answer)"),
            )
        step = self._script.pop(0)
        if step.hang:
            assert self._released is not None
            await self._released.wait()
            return self._respond(record, 503, _error("the fake stopped", type_="server_error"))
        if step.status != 200:
            message, type_ = ERROR_MESSAGES.get(step.status, ("Request failed.", "server_error"))
            code = "rate_limit_exceeded" if step.status == 429 else None
            return self._respond(
                record,
                step.status,
                _error(step.message or message, None, code, type_=type_),
                headers=step.headers,
            )
        return self._respond(record, 200, self._completion(body, step))

    def _respond(
        self,
        record: ChatRequest,
        status: int,
        payload: dict[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        record.status, record.response = status, payload
        return web.json_response(
            payload,
            status=status,
            headers={
                "x-request-id": f"req_fake{len(self.requests):06d}",
                "openai-processing-ms": "1",
                **(headers or {}),
            },
        )

    def _completion(self, body: dict[str, Any], step: _Step) -> dict[str, Any]:
        prompt_text = "".join(_text(m.get("content")) for m in body["messages"])
        prompt_tokens = (
            step.prompt_tokens
            if step.prompt_tokens is not None
            else len(prompt_text) // 4 + 3 * len(body["messages"])
        )
        completion_tokens = (
            step.completion_tokens
            if step.completion_tokens is not None
            else max(1, len(step.content or step.refusal or "") // 4)
        )
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_model or body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None if step.refusal else step.content,
                        "refusal": step.refusal,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": step.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    # ------------------------------------------------------------------ checks

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise _Invalid(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                status=401,
            )
        if auth.removeprefix("Bearer ") != self.api_key:
            raise _Invalid("Incorrect API key provided.", code="invalid_api_key", status=401)

    def _check_body(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _Invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)"
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Invalid("you must provide a model parameter", param="model")
        if body.get("stream"):
            raise _Invalid("the OpenAI fake does not stream", param="stream")
        if body.get("n", 1) != 1:
            raise _Invalid("the OpenAI fake answers one choice (n=1)", param="n")
        self._check_messages(body.get("messages"))
        if body.get("response_format") is not None:
            self._check_format(body["response_format"], body["messages"])

    def _check_messages(self, messages: Any) -> None:
        if messages is None:
            raise _Invalid(
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list):
            raise _Invalid(
                "Invalid type for 'messages': expected an array.",
                param="messages",
                code="invalid_type",
            )
        if not messages:
            raise _Invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(message, dict):
                raise _Invalid(
                    f"Invalid type for '{where}': expected an object.",
                    param=where,
                    code="invalid_type",
                )
            role = message.get("role")
            if role is None:
                raise _Invalid(
                    f"Missing required parameter: '{where}.role'.",
                    param=f"{where}.role",
                    code="missing_required_parameter",
                )
            if role not in ROLES:
                raise _Invalid(
                    f"Invalid value: {role!r}. Supported values are: "
                    + ", ".join(repr(r) for r in ROLES)
                    + ".",
                    param=f"{where}.role",
                    code="invalid_value",
                )
            if "content" not in message:
                raise _Invalid(
                    f"Missing required parameter: '{where}.content'.",
                    param=f"{where}.content",
                    code="missing_required_parameter",
                )
            content = message["content"]
            if not isinstance(content, str) and not (
                isinstance(content, list)
                and all(
                    isinstance(p, dict)
                    and p.get("type") == "text"
                    and isinstance(p.get("text"), str)
                    for p in content
                )
            ):
                raise _Invalid(
                    f"Invalid type for '{where}.content': expected a string or an array of "
                    "text parts.",
                    param=f"{where}.content",
                    code="invalid_type",
                )

    def _check_format(self, fmt: Any, messages: list[dict[str, Any]]) -> None:
        if not isinstance(fmt, dict) or fmt.get("type") not in FORMATS:
            raise _Invalid(
                "Invalid value for 'response_format.type': expected one of "
                + ", ".join(repr(f) for f in FORMATS)
                + ".",
                param="response_format.type",
                code="invalid_value",
            )
        if fmt["type"] == "json_object":
            if "json" not in "".join(_text(m.get("content")) for m in messages).lower():
                raise _Invalid(
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                    param="messages",
                )
            return
        if fmt["type"] != "json_schema":
            return
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise _Invalid(
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
                code="missing_required_parameter",
            )
        name = spec.get("name")
        if not isinstance(name, str) or not SCHEMA_NAME.match(name):
            raise _Invalid(
                "Invalid 'response_format.json_schema.name': must be a-z, A-Z, 0-9, "
                "underscores or dashes, at most 64 characters.",
                param="response_format.json_schema.name",
                code="invalid_value",
            )
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise _Invalid(
                "Missing required parameter: 'response_format.json_schema.schema'.",
                param="response_format.json_schema.schema",
                code="missing_required_parameter",
            )
        strict = spec.get("strict")
        if strict not in (None, True, False):
            raise _Invalid(
                "Invalid type for 'response_format.json_schema.strict': expected a boolean.",
                param="response_format.json_schema.strict",
                code="invalid_type",
            )
        if strict:
            problem = strict_schema_problem(schema)
            if problem:
                raise _Invalid(
                    f"Invalid schema for response_format {name!r}: {problem}",
                    param="response_format",
                    code="invalid_json_schema",
                )


def strict_schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why strict structured outputs would refuse ``schema`` (OpenAI's wording), or None."""
    if schema.get("type") != "object" or "anyOf" in schema:
        return "schema must be a JSON Schema of 'type: \"object\"', got " + repr(schema.get("type"))
    count = [0]
    try:
        _check_node(schema, (), depth=1, count=count)
        for key in ("$defs", "definitions"):
            for name, sub in (schema.get(key) or {}).items():
                _check_node(sub, (key, name), depth=1, count=count)
    except _Invalid as exc:
        return exc.message
    if count[0] > MAX_PROPERTIES:
        return f"too many object properties ({count[0]} > {MAX_PROPERTIES})"
    return None


def _check_node(node: Any, context: tuple[str, ...], *, depth: int, count: list[int]) -> None:
    where = f"In context={context!r}, "
    if not isinstance(node, dict):
        raise _Invalid(where + "schema must be an object.")
    for key in node:
        if key not in SCHEMA_KEYWORDS:
            raise _Invalid(where + f"{key!r} is not permitted.")
    if not ({"type", "anyOf", "$ref", "enum", "const"} & node.keys()):
        raise _Invalid(where + "schema must have a 'type' key.")
    if "format" in node and node["format"] not in STRING_FORMATS:
        raise _Invalid(where + f"format {node['format']!r} is not permitted.")
    if "$ref" in node and not str(node["$ref"]).startswith("#"):
        raise _Invalid(where + "only local '$ref's ('#/...') are permitted.")
    types = node.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object or "properties" in node:
        if depth > MAX_DEPTH:
            raise _Invalid(where + f"objects may nest at most {MAX_DEPTH} levels.")
        if node.get("additionalProperties") is not False:
            raise _Invalid(
                where + "'additionalProperties' is required to be supplied and to be false."
            )
        props = node.get("properties") or {}
        required = node.get("required")
        if not isinstance(required, list):
            required = []
        missing = [p for p in props if p not in required]
        if missing:
            raise _Invalid(
                where + "'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing {missing[0]!r}."
            )
        extra = [r for r in required if r not in props]
        if extra:
            raise _Invalid(where + f"Extra required key {extra[0]!r} supplied.")
        count[0] += len(props)
        for name, sub in props.items():
            _check_node(sub, (*context, "properties", name), depth=depth + 1, count=count)
    if "items" in node:
        _check_node(node["items"], (*context, "items"), depth=depth, count=count)
    if "anyOf" in node:
        branches = node["anyOf"]
        if not isinstance(branches, list) or not branches:
            raise _Invalid(where + "'anyOf' must be a non-empty array.")
        for i, sub in enumerate(branches):
            _check_node(sub, (*context, "anyOf", str(i)), depth=depth, count=count)


def _error(
    message: str,
    param: str | None = None,
    code: str | None = None,
    *,
    type_: str = "invalid_request_error",
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
