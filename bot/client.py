"""The Python client of signoff's integrator API, for agents and integrators.

Sync and async, on httpx alone (no FastAPI, SQLAlchemy or pydantic at import time, and
nothing else from this package: the module can be copied into a project on its own)::

    from bot.client import Signoff, Rejected

    signoff = Signoff("http://127.0.0.1:8000", api_key)
    item = signoff.submit(route="support", kind="email", title="Refund for order 1234",
                          content={"to": ["jane@example.com"], "subject": "Your refund",
                                   "body": "Hi Jane, ..."})
    item = signoff.wait(item, timeout=600)          # StillPending after 600 s
    if item.approved:
        send(item.final_content)

    @signoff.require_approval(route="support", kind="email")
    def send_email(to: list[str], subject: str, body: str) -> None: ...

    ask_human = signoff.human_as_tool(route="support")
    answer = ask_human("Which plan does Jane's account use?")

:class:`AsyncSignoff` has the same methods as coroutines. :func:`verify_signature` checks
the ``Signoff-Signature`` header of a release or callback.

Design
------
* **One core, two thin transports.** Every call is a *flow*: a generator of pure code that
  yields the HTTP requests it needs and receives their answers (sans-I/O). Building
  requests, parsing answers, mapping errors, the retry, the long-poll rounds and the
  approval logic live there once; :class:`Signoff` (``httpx.Client``) and
  :class:`AsyncSignoff` (``httpx.AsyncClient``) only send what a flow yields.
* **Errors.** The API answers ``{"error": {"code", "message"}}``; the client raises a
  :class:`SignoffAPIError` carrying ``status``, ``code`` and ``message``, as
  :class:`InvalidRequest` (400, 413, 422; ``field`` names the field the message
  starts with), :class:`Unauthorized` (401, 403), :class:`NotFound` (404),
  :class:`Conflict` (409) or :class:`ServerError` (5xx). A network failure raises
  :class:`SignoffConnectionError`.
* **Retries and idempotency.** Every request that fails at the network level (connect
  error, timeout, dropped connection) is sent once more, and only once: reads are safe to
  repeat, and ``submit`` always sends an ``Idempotency-Key`` (a fresh random one per call
  unless given), so a submit whose answer was lost is answered by the server with the
  item it already made. HTTP error answers are never retried.
* **Waiting.** ``wait`` long-polls ``GET /v1/items/{id}?wait=N`` in rounds of at most
  ``poll_seconds`` (default 25 s, under the server's ``SIGNOFF_MAX_WAIT_SECONDS`` cap of
  60 s) until the item is settled or ``timeout`` (default 600 s; ``None``: no limit) has
  passed, then raises :class:`StillPending` (a ``TimeoutError``) carrying the item. A
  server that answers a round sooner than asked, still pending, is asked again only
  once the round (at most a second) is over, so a server that does not hold polls is
  not hammered.
* **What counts as approved** (:attr:`Item.approved`): state ``approved`` (outcomes
  ``approved``, ``edited`` and ``auto_approved``), or ``expired`` by a route whose
  expiry step says ``on_expire: approve`` (signoff releases those too: silence is consent
  on such a route). Everything else settled is a rejection whose :attr:`Item.reason`
  is the deciding record's reason (``"wrong tone: too curt"``, ``"confidence 0.1 < 0.2"``,
  ``"expired: after 24 h — rejected by policy"``).

``require_approval`` and ``human_as_tool`` are documented on :class:`Signoff`.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import hashlib
import hmac
import inspect
import json
import math
import re
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload
from urllib.parse import quote

import httpx

__all__ = [
    "DEFAULT_WAIT_SECONDS",
    "SIGNATURE_HEADER",
    "AsyncSignoff",
    "Conflict",
    "Decision",
    "InvalidRequest",
    "Item",
    "NotApproved",
    "NotFound",
    "Rejected",
    "ServerError",
    "Signoff",
    "SignoffAPIError",
    "SignoffClientError",
    "SignoffConnectionError",
    "StillPending",
    "Unauthorized",
    "UnusableEdit",
    "verify_signature",
]

SIGNATURE_HEADER = "Signoff-Signature"
DEFAULT_TIMEOUT_SECONDS = 30.0  # one HTTP request, not counting a long poll's hold
DEFAULT_POLL_SECONDS = 25.0  # one long-poll round
DEFAULT_WAIT_SECONDS = 600.0  # how long wait(), the decorator and the human tool wait
MIN_ROUND_SECONDS = 1.0  # a round answered sooner than this is followed by a pause
USER_AGENT = "signoff-python/0.1"
TITLE_MAX = 300  # the API's limit on a title

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")
OnReject = Literal["raise", "return"]


# -- errors ----------------------------------------------------------------------------


class SignoffClientError(Exception):
    """Base of every error this client raises."""


class SignoffConnectionError(SignoffClientError):
    """The server could not be reached, or the connection failed, twice in a row."""


class SignoffAPIError(SignoffClientError):
    """The API answered with an error: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


_FIELD = re.compile(r"^([A-Za-z_][\w-]*(?:\.[\w-]+)*): ")


class InvalidRequest(SignoffAPIError):
    """400, 413 or 422: the request was not acceptable; ``field`` is the field the
    message names first (``"content.subject"``, ``"route"``), when it names one."""

    @property
    def field(self) -> str | None:
        match = _FIELD.match(self.message)
        return match.group(1) if match else None


class Unauthorized(SignoffAPIError):
    """401 or 403: no API key, an unknown one, or one that may not do this."""


class NotFound(SignoffAPIError):
    """404: no such item, or another integrator's."""


class Conflict(SignoffAPIError):
    """409: e.g. an ``Idempotency-Key`` reused with another body."""


class ServerError(SignoffAPIError):
    """5xx: the server (or a proxy in front of it) failed."""


class NotApproved(SignoffClientError):
    """The item did not get an approval that the caller can act on; ``item`` is the item
    as last seen and ``explanation`` a sentence saying so that an LLM can read."""

    def __init__(self, message: str, *, item: Item) -> None:
        super().__init__(message)
        self.item = item

    @property
    def explanation(self) -> str:
        return str(self)


class StillPending(NotApproved, TimeoutError):
    """No decision within the wait's ``timeout``; ``item`` is the (pending) item."""

    def __init__(self, item: Item, *, waited: float) -> None:
        super().__init__(
            f"item {item.id} is still pending after {waited:g} s without a decision", item=item
        )
        self.waited = waited

    @property
    def explanation(self) -> str:
        return (
            f"No human has decided on this action yet (waited {self.waited:g} s; "
            f"signoff item {self.item.id}). It was not performed."
        )


class Rejected(NotApproved):
    """The reviewer (or the route's policy) rejected the item; ``reason`` says why."""

    def __init__(self, reason: str, item: Item) -> None:
        who = (
            "The human reviewer"
            if item.outcome in (None, "rejected")
            else "The review policy"  # auto_rejected, expired
        )
        super().__init__(f"{who} rejected this action: {reason}", item=item)
        self.reason = reason


class UnusableEdit(NotApproved):
    """The reviewer approved an edited version that cannot be turned back into the
    function's arguments (an edited call that does not parse, or a changed field the
    function does not take). The action is not performed rather than run unedited."""

    def __init__(self, detail: str, item: Item) -> None:
        super().__init__(
            f"The human reviewer approved an edited version of this action that could not "
            f"be applied ({detail}). It was not performed.",
            item=item,
        )
        self.detail = detail


# -- what the API answers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """One recorded decision of an item (``approve``, ``edit``, ``reject``,
    ``auto_approve``, ``auto_reject``, ``expire``)."""

    action: str
    actor_name: str
    actor_id: str
    surface: str
    reason_code: str | None
    reason_text: str | None
    at: datetime | None
    content_after: dict[str, Any] | None = None

    @property
    def reason(self) -> str | None:
        """``"code: text"``, or whichever of the two is set."""
        parts = [p for p in (self.reason_code, self.reason_text) if p]
        return ": ".join(parts) or None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            action=str(data.get("action", "")),
            actor_name=str(data.get("actor_name", "")),
            actor_id=str(data.get("actor_id", "")),
            surface=str(data.get("surface", "")),
            reason_code=data.get("reason_code"),
            reason_text=data.get("reason_text"),
            at=_when(data.get("at")),
            content_after=data.get("content_after"),
        )


@dataclass(frozen=True, slots=True)
class Item:
    """An item as the API answers it. Unknown fields of newer servers are kept in
    ``raw``; fields an older server lacks get their empty value."""

    id: str
    route: str
    kind: str
    title: str
    content: dict[str, Any]
    final_content: dict[str, Any] | None
    state: str
    outcome: str | None
    release_state: str
    release_error: str | None
    confidence: float | None
    callback_url: str | None
    metadata: dict[str, Any]
    requested_by: str | None
    approvals: int
    quorum: int
    decisions: tuple[Decision, ...]
    created_at: datetime | None
    updated_at: datetime | None
    decided_at: datetime | None
    due_at: datetime | None
    prompt: Any = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Item:
        return cls(
            id=str(data["id"]),
            route=str(data.get("route", "")),
            kind=str(data.get("kind", "")),
            title=str(data.get("title", "")),
            content=dict(data.get("content") or {}),
            final_content=data.get("final_content"),
            state=str(data["state"]),
            outcome=data.get("outcome"),
            release_state=str(data.get("release_state", "none")),
            release_error=data.get("release_error"),
            confidence=data.get("confidence"),
            callback_url=data.get("callback_url"),
            metadata=dict(data.get("metadata") or {}),
            requested_by=data.get("requested_by"),
            approvals=int(data.get("approvals") or 0),
            quorum=int(data.get("quorum") or 1),
            decisions=tuple(Decision.from_json(d) for d in data.get("decisions") or ()),
            created_at=_when(data.get("created_at")),
            updated_at=_when(data.get("updated_at")),
            decided_at=_when(data.get("decided_at")),
            due_at=_when(data.get("due_at")),
            prompt=data.get("prompt"),
            raw=data,
        )

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    @property
    def settled(self) -> bool:
        return not self.pending

    @property
    def approved(self) -> bool:
        """Whether the action may go ahead: see "What counts as approved" above."""
        if self.state == "approved":
            return True
        expiry = self._settling(("expire",))
        return self.state == "expired" and expiry is not None and expiry.reason_code == "approve"

    @property
    def approved_content(self) -> dict[str, Any]:
        """What was approved: ``final_content`` (the edited version after an edit)."""
        return dict(self.final_content if self.final_content is not None else self.content)

    @property
    def reason(self) -> str | None:
        """Why a settled item was not approved; None while pending or when approved."""
        if self.pending or self.approved:
            return None
        found = self._settling(("reject", "auto_reject", "expire"))
        if found is None:
            return self.outcome or self.state
        reason = found.reason_text if found.action == "expire" else found.reason
        if found.action == "expire":
            return f"expired: {reason}" if reason else "expired"
        return reason or "no reason given"

    def _settling(self, actions: Sequence[str]) -> Decision | None:
        return next((d for d in reversed(self.decisions) if d.action in actions), None)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -- signatures ------------------------------------------------------------------------


def verify_signature(
    secret: str | bytes,
    header: str | None,
    body: bytes | str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (the ``Signoff-Signature`` value) signs ``body`` with ``secret``.

    The scheme is ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
    Pass the raw body bytes as received (a ``str`` is encoded as UTF-8). A ``t`` more than
    ``tolerance`` seconds from ``now`` (default: the current time) is refused, in either
    direction. Parts other than ``t`` and ``v1`` are ignored, and any of several ``v1``
    values may match (so a sender can sign with two secrets during a rotation). Never
    raises on a malformed header: it is simply not a valid signature. The comparison
    takes constant time.
    """
    if not isinstance(header, str) or not header:
        return False
    stamp: str | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        value = value.strip()
        if key == "t":
            if stamp is not None:  # two timestamps: which one was signed is ambiguous
                return False
            stamp = value
        elif key == "v1":
            candidates.append(value.encode("utf-8", "replace"))
    if stamp is None or not candidates:
        return False
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        return False
    current = time.time() if now is None else now
    if not abs(current - int(stamp)) <= tolerance:
        return False
    key_bytes = secret.encode() if isinstance(secret, str) else secret
    payload = body.encode() if isinstance(body, str) else body
    expected = hmac.new(key_bytes, f"{stamp}.".encode() + payload, hashlib.sha256)
    digest = expected.hexdigest().encode()
    matched = False
    for candidate in candidates:  # no early exit: every candidate is compared
        matched |= hmac.compare_digest(digest, candidate)
    return matched


# -- the core: requests, answers and flows ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Config:
    url: str
    api_key: str
    timeout: float
    poll_seconds: float

    @classmethod
    def make(cls, url: str, api_key: str, timeout: float, poll_seconds: float) -> _Config:
        if not url:
            raise ValueError("url is required, e.g. http://127.0.0.1:8000")
        if not api_key or not api_key.strip():
            raise ValueError("api_key is required (signoff keys create NAME)")
        if not timeout > 0 or not poll_seconds > 0:
            raise ValueError("timeout and poll_seconds must be positive")
        return cls(url.rstrip("/"), api_key.strip(), float(timeout), float(poll_seconds))

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def timeout_for(self, request: _Request) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=self.timeout + request.hold)


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hold: float = 0.0  # a long poll's wait: added to the read timeout
    delay: float = 0.0  # pause this long before sending


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes


# A flow yields the requests it needs, receives their replies, and returns its result;
# a transport error is thrown into it at the yield.
_Flow = Generator[_Request, _Reply, T]


def _exchange(request: _Request) -> _Flow[_Reply]:
    """Send ``request``; on a network failure send it once more, unchanged (for a submit:
    the same Idempotency-Key, so the server answers a replay, not a second item)."""
    try:
        return (yield request)
    except httpx.TransportError:
        pass
    try:
        return (yield request)
    except httpx.TransportError as exc:
        raise SignoffConnectionError(
            f"{request.method} {request.path} failed twice: {type(exc).__name__}: {exc}"
        ) from exc


def _json_body(data: Mapping[str, Any], what: str) -> bytes:
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None
    return text.encode()


def _submit_request(
    *,
    route: str,
    kind: str,
    title: str,
    content: Mapping[str, Any],
    confidence: float | None,
    callback_url: str | None,
    metadata: Mapping[str, Any] | None,
    requested_by: str | None,
    due_at: datetime | str | None,
    prompt: str | Sequence[Mapping[str, str]] | None,
    idempotency_key: str | None,
) -> _Request:
    body: dict[str, Any] = {"route": route, "kind": kind, "title": title, "content": content}
    if isinstance(due_at, datetime):
        if due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware")
        due_at = due_at.isoformat()
    optional = {
        "confidence": confidence,
        "callback_url": callback_url,
        "metadata": metadata,
        "requested_by": requested_by,
        "due_at": due_at,
        "prompt": prompt if prompt is None or isinstance(prompt, str) else list(prompt),
    }
    body.update({k: v for k, v in optional.items() if v is not None})  # absent, not null
    key = idempotency_key if idempotency_key is not None else f"py-{uuid.uuid4().hex}"
    return _Request(
        "POST",
        "/v1/items",
        body=_json_body(body, "the item"),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )


def _item_path(item: str | Item) -> str:
    item_id = item.id if isinstance(item, Item) else item
    if not item_id:
        raise ValueError("an item id is required")
    return f"/v1/items/{quote(item_id, safe='')}"


_ERRORS: dict[int, type[SignoffAPIError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
}


def _api_error(reply: _Reply) -> SignoffAPIError:
    code, message = f"http_{reply.status}", reply.body.decode("utf-8", "replace")[:500]
    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
        error = json.loads(reply.body)["error"]
        code, message = str(error["code"]), str(error["message"])
    kind = _ERRORS.get(reply.status) or (ServerError if reply.status >= 500 else SignoffAPIError)
    return kind(reply.status, code, message)


def _item_of(reply: _Reply) -> Item:
    if reply.status >= 400:
        raise _api_error(reply)
    try:
        data = json.loads(reply.body)
        return Item.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SignoffAPIError(
            reply.status, "invalid_response", f"the answer is not an item: {exc}"
        ) from None


def _submit_flow(request: _Request) -> _Flow[Item]:
    return _item_of((yield from _exchange(request)))


def _get_flow(item: str | Item) -> _Flow[Item]:
    return _item_of((yield from _exchange(_Request("GET", _item_path(item)))))


def _wait_flow(
    config: _Config,
    item: str | Item,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> _Flow[Item]:
    """Long-poll in rounds until the item is settled; StillPending after ``timeout``."""
    if timeout is not None and not timeout >= 0:
        raise ValueError("timeout must be >= 0 seconds, or None to wait without a limit")
    path = _item_path(item)
    deadline = None if timeout is None else clock() + timeout
    delay = 0.0
    while True:
        left = math.inf if deadline is None else max(0.0, deadline - clock())
        delay = min(delay, left)
        hold = round(min(config.poll_seconds, left - delay), 3)
        params = {"wait": f"{hold:g}"} if hold > 0 else None
        started = clock() + delay
        reply = yield from _exchange(_Request("GET", path, params=params, hold=hold, delay=delay))
        current = _item_of(reply)
        if current.settled:
            return current
        if deadline is not None and clock() >= deadline:
            raise StillPending(current, waited=cast(float, timeout))
        # answered sooner than asked (a server that does not hold polls): the next
        # request waits for the rest of the round, or of a second if that is shorter
        delay = max(0.0, min(MIN_ROUND_SECONDS, hold) - (clock() - started))


def _decided_flow(config: _Config, request: _Request, timeout: float | None) -> _Flow[Item]:
    """Submit, then wait for the decision (not at all when policy decided at once)."""
    item = yield from _submit_flow(request)
    if item.settled:
        return item
    return (yield from _wait_flow(config, item, timeout))


# -- require_approval: arguments in, approved arguments out ------------------------------


_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class _Call:
    """One call of a decorated function: its arguments as sent, and what passes through."""

    values: dict[str, Any]  # parameter name -> the caller's object (reviewed ones)
    sent: dict[str, Any]  # parameter name -> its JSON value as submitted
    passthrough: dict[str, Any]  # excluded parameters (self, ...), never sent


@dataclass(frozen=True, slots=True)
class _Go:
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class _Approval:
    """The pure part of ``require_approval``: the draft of a call, and the call to make
    from the approved item."""

    function: Callable[..., Any]
    route: str
    kind: str | None
    title: str | Callable[[Mapping[str, Any]], str] | None
    confidence: float | None
    metadata: Mapping[str, Any] | None
    requested_by: str | None
    exclude: frozenset[str]
    signature: inspect.Signature = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        signature = inspect.signature(self.function)
        object.__setattr__(self, "signature", signature)
        name = getattr(self.function, "__name__", "")
        object.__setattr__(self, "name", name if name.isidentifier() else "action")
        unknown = self.exclude - set(signature.parameters)
        if unknown:
            raise ValueError(f"exclude names no parameter of {self.name}: {sorted(unknown)}")

    def _excluded(self) -> frozenset[str]:
        first = next(iter(self.signature.parameters), None)
        implicit = {first} if first in ("self", "cls") else set()
        return self.exclude | implicit

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        excluded = self._excluded()
        values = {k: v for k, v in bound.arguments.items() if k not in excluded}
        passthrough = {k: v for k, v in bound.arguments.items() if k in excluded}
        sent = json.loads(_json_body(values, f"the arguments of {self.name}"))
        return _Call(values=values, sent=sent, passthrough=passthrough)

    # Two ways of turning arguments into content (see Signoff.require_approval).

    def _var_keyword(self) -> str | None:
        return next(
            (
                p.name
                for p in self.signature.parameters.values()
                if p.kind is inspect.Parameter.VAR_KEYWORD and p.name not in self._excluded()
            ),
            None,
        )

    def content(self, call: _Call) -> dict[str, Any]:
        if self.kind is None:
            return {"text": render_call(self.name, call.sent)}
        extra = self._var_keyword()
        content = {k: v for k, v in call.sent.items() if k != extra}
        if extra is not None:
            content.update(call.sent[extra])
        return content

    def request(self, call: _Call) -> _Request:
        metadata = dict(self.metadata or {})
        if self.kind is None:
            function = getattr(self.function, "__qualname__", self.name)
            metadata["call"] = {"function": function, "arguments": call.sent}
        if callable(self.title):
            title = self.title(call.values)
        else:
            title = self.title or render_call(self.name, call.sent, one_line=True)
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "…"
        return _submit_request(
            route=self.route,
            kind=self.kind or "message",
            title=title,
            content=self.content(call),
            confidence=self.confidence,
            callback_url=None,
            metadata=metadata,
            requested_by=self.requested_by,
            due_at=None,
            prompt=None,
            idempotency_key=None,
        )

    def resolve(self, item: Item, call: _Call) -> _Go:
        """The call to make for a settled item; Rejected or UnusableEdit otherwise."""
        if not item.approved:
            raise Rejected(item.reason or "no reason given", item)
        approved = self._approved_values(item, call)
        values = {
            # a value the reviewer left alone is passed as the caller's own object
            name: call.values[name] if approved[name] == call.sent[name] else approved[name]
            for name in call.values
        }
        return self._arrange({**values, **call.passthrough})

    def _approved_values(self, item: Item, call: _Call) -> dict[str, Any]:
        final = item.approved_content
        if self.kind is None:
            text = final.get("text")
            if text == item.content.get("text"):
                return dict(call.sent)
            try:
                return parse_call(self.name, str(text), expected=call.sent)
            except ValueError as exc:
                raise UnusableEdit(str(exc), item) from None
        extra = self._var_keyword()
        named = {k for k in call.sent if k != extra}
        values = {k: final.get(k, call.sent[k]) for k in named}
        more: dict[str, Any] = {}
        for key, value in final.items():
            if key in named:
                continue
            sent = call.sent[extra].get(key, _MISSING) if extra is not None else _MISSING
            if sent is _MISSING and value == item.content.get(key, _MISSING):
                continue  # a default the server filled in (cc: [], html: null), unedited
            if extra is None:
                raise UnusableEdit(
                    f"the reviewer set {key!r}, which {self.name} does not take", item
                )
            more[key] = value
        if extra is not None:
            values[extra] = more
        return values

    def _arrange(self, values: Mapping[str, Any]) -> _Go:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in self.signature.parameters.values():
            value = values[parameter.name]
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[parameter.name] = value
            else:
                args.append(value)
        return _Go(args, kwargs)


def render_call(name: str, arguments: Mapping[str, Any], *, one_line: bool = False) -> str:
    """``name(a=1, b='x')``, as reviewers read (and may edit) a call; one argument a line
    when it is long. Values are JSON values shown as Python literals."""
    parts = [f"{key}={value!r}" for key, value in arguments.items()]
    flat = f"{name}({', '.join(parts)})"
    if one_line or (len(flat) <= 80 and "\n" not in flat):
        return flat
    return name + "(\n" + "".join(f"    {part},\n" for part in parts) + ")"


def parse_call(name: str, text: str, *, expected: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of an edited ``name(...)`` call, each a literal; ValueError
    naming what is wrong otherwise. Every argument of ``expected`` must be given, and no
    other (nothing is evaluated: ``ast.literal_eval`` only)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"the edited call does not parse: {exc.msg}") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        raise ValueError(f"the edited text is not a call of {name}(...)")
    if tree.func.id != name:
        raise ValueError(f"the edited call names {tree.func.id}, not {name}")
    if tree.args or any(k.arg is None for k in tree.keywords):
        raise ValueError("the edited call must give every argument as name=value")
    values: dict[str, Any] = {}
    for keyword in tree.keywords:
        key = cast(str, keyword.arg)
        if key not in expected:
            raise ValueError(f"{name} has no argument {key!r}")
        if key in values:
            raise ValueError(f"argument {key!r} is given twice")
        try:
            values[key] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f"argument {key!r} is not a literal value") from None
    missing = [k for k in expected if k not in values]
    if missing:
        raise ValueError(f"the edited call leaves out {', '.join(missing)}")
    return values


# -- human_as_tool ---------------------------------------------------------------------


def _question_request(route: str, question: str, title: str | None) -> _Request:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question must be a non-empty string")
    first_line = question.strip().splitlines()[0]
    title = title or f"Question: {first_line}"
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1] + "…"
    return _submit_request(
        route=route,
        kind="message",
        title=title,
        content={"text": question},
        confidence=None,
        callback_url=None,
        metadata={"question": True},
        requested_by=None,
        due_at=None,
        prompt=None,
        idempotency_key=None,
    )


def _answer_of(item: Item) -> str:
    """A reviewer's answer: the text as they edited it; the reason they gave when they
    rejected; ``"approved"`` for a plain approval."""
    if item.state == "expired" or not item.approved:
        return item.reason or "rejected"
    answer = item.approved_content.get("text")
    if isinstance(answer, str) and answer != item.content.get("text"):
        return answer
    return "approved"


_HUMAN_TOOL_DOC = """Ask a human a free-text question and return their answer.

Use it when you need a fact, a judgement or a permission only a person can give.
The question should be self-contained: the person sees only the question."""


# -- the two transports ----------------------------------------------------------------


class _Guard(Protocol):
    """A ``require_approval`` decorator with ``on_reject="raise"``."""

    @overload
    def __call__(
        self, function: Callable[P, Coroutine[Any, Any, R]], /
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, function: Callable[P, R], /) -> Callable[P, R]: ...


class _ReturningGuard(Protocol):
    """A ``require_approval`` decorator with ``on_reject="return"``."""

    @overload
    def __call__(
        self, function: Callable[P, Coroutine[Any, Any, R]], /
    ) -> Callable[P, Coroutine[Any, Any, R | str]]: ...
    @overload
    def __call__(self, function: Callable[P, R], /) -> Callable[P, R | str]: ...


class _Client:
    """What Signoff and AsyncSignoff share: settings and the decorator."""

    _config: _Config

    def _sync_client(self) -> contextlib.AbstractContextManager[Signoff]:
        raise NotImplementedError

    def _async_client(self) -> contextlib.AbstractAsyncContextManager[AsyncSignoff]:
        raise NotImplementedError

    @overload
    def require_approval(
        self,
        *,
        route: str,
        kind: str | None = None,
        title: str | Callable[[Mapping[str, Any]], str] | None = None,
        on_reject: Literal["raise"] = "raise",
        timeout: float | None = DEFAULT_WAIT_SECONDS,
        confidence: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        requested_by: str | None = None,
        exclude: Collection[str] = (),
    ) -> _Guard: ...
    @overload
    def require_approval(
        self,
        *,
        route: str,
        kind: str | None = None,
        title: str | Callable[[Mapping[str, Any]], str] | None = None,
        on_reject: Literal["return"],
        timeout: float | None = DEFAULT_WAIT_SECONDS,
        confidence: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        requested_by: str | None = None,
        exclude: Collection[str] = (),
    ) -> _ReturningGuard: ...
    def require_approval(
        self,
        *,
        route: str,
        kind: str | None = None,
        title: str | Callable[[Mapping[str, Any]], str] | None = None,
        on_reject: OnReject = "raise",
        timeout: float | None = DEFAULT_WAIT_SECONDS,
        confidence: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        requested_by: str | None = None,
        exclude: Collection[str] = (),
    ) -> _Guard | _ReturningGuard:
        """Decorate a function that performs an action so that it runs only once a
        person approved it, with the arguments they approved.

        Calling the function binds its arguments (``inspect.signature``, defaults
        applied), submits them as a draft on ``route``, waits up to ``timeout`` seconds
        for the decision, then:

        * **approved** (:attr:`Item.approved`: also auto-approved, and expired on a
          route that approves on expiry): runs the function and returns its result.
          After an **edit** it runs with the edited arguments; an argument the reviewer
          left alone is passed as the caller's own object, an edited one as its JSON
          value (arguments must be JSON-serialisable).
        * **rejected**: raises :class:`Rejected` (``reason``: the reviewer's reason,
          e.g. ``"wrong tone: too curt"``), or with ``on_reject="return"`` returns
          ``"The human reviewer rejected this action: wrong tone: too curt"``, a string
          an LLM tool can hand back to the model (``"The review policy rejected this
          action: confidence 0.1 < 0.2"`` for a rejection by policy). In that mode a
          timeout (:class:`StillPending`) and an unusable edit (:class:`UnusableEdit`)
          are returned as such sentences too. Connection and API errors always raise.

        Arguments become the draft's content in one of two ways:

        * ``kind`` given (``email``, ``code_change``, ``decision``, ``label``, ...): the
          arguments *are* the content, by name, so ``send_email(to, subject, body)``
          with ``kind="email"`` is reviewed as an e-mail and the server checks it like
          any e-mail draft. A ``**kwargs`` parameter spreads into the content. Fields
          the server adds with their defaults (``cc: []``) are not passed back unless a
          reviewer changed them; a changed field the function does not take is an
          :class:`UnusableEdit`, never silently dropped.
        * ``kind=None`` (default): a ``message`` whose text is the call as Python,
          ``send_refund(order_id=1234, amount=50.0)`` (the arguments are also in the
          item's ``metadata["call"]``). A reviewer may edit the literal values in the
          text; the edited call is read back with ``ast.literal_eval`` (nothing is
          executed) and must name every argument.

        ``exclude`` names parameters that are not reviewed but passed through (a
        leading ``self``/``cls`` always is). ``title`` is a string or a function of the
        arguments (a mapping of name to value); by default the call on one line.
        ``confidence``, ``metadata`` and ``requested_by`` go with every draft.

        Works on ``async def`` functions (through :class:`AsyncSignoff`) and on plain
        ones (through :class:`Signoff`), whichever client the decorator comes from: the
        other kind is opened per call.
        """
        if on_reject not in ("raise", "return"):
            raise ValueError(f"on_reject must be 'raise' or 'return', not {on_reject!r}")
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be >= 0 seconds, or None to wait without a limit")

        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            approval = _Approval(
                function=function,
                route=route,
                kind=kind,
                title=title,
                confidence=confidence,
                metadata=metadata,
                requested_by=requested_by,
                exclude=frozenset(exclude),
            )
            if inspect.iscoroutinefunction(function):

                @functools.wraps(function)
                async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                    call = approval.bind(args, kwargs)
                    try:
                        async with self._async_client() as client:
                            item = await client._drive(
                                _decided_flow(client._config, approval.request(call), timeout)
                            )
                        go = approval.resolve(item, call)
                    except NotApproved as refusal:
                        if on_reject == "raise":
                            raise
                        return refusal.explanation
                    return await function(*go.args, **go.kwargs)

                return guarded_async

            @functools.wraps(function)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                call = approval.bind(args, kwargs)
                try:
                    with self._sync_client() as client:
                        item = client._drive(
                            _decided_flow(client._config, approval.request(call), timeout)
                        )
                    go = approval.resolve(item, call)
                except NotApproved as refusal:
                    if on_reject == "raise":
                        raise
                    return refusal.explanation
                return function(*go.args, **go.kwargs)

            return guarded

        return cast(_Guard, decorate)


class Signoff(_Client):
    """The synchronous client (``httpx.Client``); use it as a context manager or call
    :meth:`close`.

    ``timeout`` bounds one HTTP request (a long poll gets its hold on top);
    ``poll_seconds`` is the longest round of :meth:`wait`; ``transport`` is an httpx
    transport (tests, proxies).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = _Config.make(url, api_key, timeout, poll_seconds)
        self._http = httpx.Client(
            base_url=self._config.url, headers=self._config.headers(), transport=transport
        )

    def submit(
        self,
        *,
        route: str,
        kind: str,
        title: str,
        content: Mapping[str, Any],
        confidence: float | None = None,
        callback_url: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        requested_by: str | None = None,
        due_at: datetime | str | None = None,
        prompt: str | Sequence[Mapping[str, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> Item:
        """``POST /v1/items``: submit a draft; the item as stored (``pending``, or
        already decided by the route's confidence thresholds). Without
        ``idempotency_key`` a random one is made, so the one retry after a network
        failure cannot make a second item; pass your own to make retries of your own
        (after a crash, say) safe too. ``prompt``: what the model saw (a string or chat
        messages), for training exports."""
        request = _submit_request(
            route=route,
            kind=kind,
            title=title,
            content=content,
            confidence=confidence,
            callback_url=callback_url,
            metadata=metadata,
            requested_by=requested_by,
            due_at=due_at,
            prompt=prompt,
            idempotency_key=idempotency_key,
        )
        return self._drive(_submit_flow(request))

    def get(self, item: str | Item) -> Item:
        """``GET /v1/items/{id}``: the item as it is now."""
        return self._drive(_get_flow(item))

    def wait(self, item: str | Item, *, timeout: float | None = DEFAULT_WAIT_SECONDS) -> Item:
        """The item once settled, long-polling in rounds; :class:`StillPending` (with
        the item) after ``timeout`` seconds (``None``: no limit; ``0``: one look)."""
        return self._drive(_wait_flow(self._config, item, timeout))

    def human_as_tool(
        self, *, route: str, timeout: float | None = DEFAULT_WAIT_SECONDS, title: str | None = None
    ) -> Callable[[str], str]:
        """A function ``ask(question) -> answer`` that puts a free-text question to a
        person on ``route`` and returns their answer, for an agent's tool list (it has a
        name, ``ask_human``, and a docstring a model can read).

        Provisional, until signoff has a question kind: the question is submitted as a
        ``message`` item (``metadata: {"question": true}``) whose text is the question;
        the reviewer answers by editing the text into the answer and approving, and the
        answer is the edited text. A rejection answers with the reason the reviewer gave;
        a plain approval answers ``"approved"``. Raises :class:`StillPending` when nobody
        answers within ``timeout`` seconds.
        """

        def ask_human(question: str) -> str:
            request = _question_request(route, question, title)
            return _answer_of(self._drive(_decided_flow(self._config, request, timeout)))

        ask_human.__doc__ = _HUMAN_TOOL_DOC
        return ask_human

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Signoff:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------

    def _drive(self, flow: _Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                try:
                    reply = self._send(request)
                except httpx.TransportError as exc:
                    request = flow.throw(exc)
                else:
                    request = flow.send(reply)
        except StopIteration as done:
            return cast(T, done.value)

    def _send(self, request: _Request) -> _Reply:
        if request.delay > 0:
            time.sleep(request.delay)
        response = self._http.request(
            request.method,
            request.path,
            params=request.params,
            content=request.body,
            headers=request.headers,
            timeout=self._config.timeout_for(request),
        )
        return _Reply(response.status_code, response.content)

    @contextlib.contextmanager
    def _sync_client(self) -> Iterator[Signoff]:
        yield self

    @contextlib.asynccontextmanager
    async def _async_client(self) -> AsyncIterator[AsyncSignoff]:
        # an AsyncClient belongs to one event loop: a fresh one per call
        c = self._config
        async with AsyncSignoff(
            c.url, c.api_key, timeout=c.timeout, poll_seconds=c.poll_seconds
        ) as client:
            yield client


class AsyncSignoff(_Client):
    """The asynchronous client (``httpx.AsyncClient``): :class:`Signoff`'s methods as
    coroutines. Use it as an async context manager or call :meth:`aclose`."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = _Config.make(url, api_key, timeout, poll_seconds)
        self._http = httpx.AsyncClient(
            base_url=self._config.url, headers=self._config.headers(), transport=transport
        )

    async def submit(
        self,
        *,
        route: str,
        kind: str,
        title: str,
        content: Mapping[str, Any],
        confidence: float | None = None,
        callback_url: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        requested_by: str | None = None,
        due_at: datetime | str | None = None,
        prompt: str | Sequence[Mapping[str, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> Item:
        """See :meth:`Signoff.submit`."""
        request = _submit_request(
            route=route,
            kind=kind,
            title=title,
            content=content,
            confidence=confidence,
            callback_url=callback_url,
            metadata=metadata,
            requested_by=requested_by,
            due_at=due_at,
            prompt=prompt,
            idempotency_key=idempotency_key,
        )
        return await self._drive(_submit_flow(request))

    async def get(self, item: str | Item) -> Item:
        """See :meth:`Signoff.get`."""
        return await self._drive(_get_flow(item))

    async def wait(
        self,
        item: str | Item,
        *,
        timeout: float | None = DEFAULT_WAIT_SECONDS,  # noqa: ASYNC109 (as Signoff.wait)
    ) -> Item:
        """See :meth:`Signoff.wait`."""
        return await self._drive(_wait_flow(self._config, item, timeout))

    def human_as_tool(
        self, *, route: str, timeout: float | None = DEFAULT_WAIT_SECONDS, title: str | None = None
    ) -> Callable[[str], Awaitable[str]]:
        """See :meth:`Signoff.human_as_tool`; the function is a coroutine function."""

        async def ask_human(question: str) -> str:
            request = _question_request(route, question, title)
            return _answer_of(await self._drive(_decided_flow(self._config, request, timeout)))

        ask_human.__doc__ = _HUMAN_TOOL_DOC
        return ask_human

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSignoff:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- transport ------------------------------------------------------------------

    async def _drive(self, flow: _Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                try:
                    reply = await self._send(request)
                except httpx.TransportError as exc:
                    request = flow.throw(exc)
                else:
                    request = flow.send(reply)
        except StopIteration as done:
            return cast(T, done.value)

    async def _send(self, request: _Request) -> _Reply:
        if request.delay > 0:
            await asyncio.sleep(request.delay)
        response = await self._http.request(
            request.method,
            request.path,
            params=request.params,
            content=request.body,
            headers=request.headers,
            timeout=self._config.timeout_for(request),
        )
        return _Reply(response.status_code, response.content)

    @contextlib.contextmanager
    def _sync_client(self) -> Iterator[Signoff]:
        c = self._config
        with Signoff(c.url, c.api_key, timeout=c.timeout, poll_seconds=c.poll_seconds) as client:
            yield client

    @contextlib.asynccontextmanager
    async def _async_client(self) -> AsyncIterator[AsyncSignoff]:
        yield self
