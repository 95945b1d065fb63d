"""A protocol-faithful Slack Web API and Socket Mode emulator on 127.0.0.1 (aiohttp).

Tests drive the real ``slack_sdk`` clients against it::

    slack = await SlackEmulator().start()
    client = AsyncWebClient(token="xoxb-test", base_url=slack.url)
    ...
    await slack.stop()

(or ``async with SlackEmulator() as slack: ...``).

It answers the way Slack does: HTTP 200 with ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``; HTTP 429 with ``Retry-After`` when a rate limit is
scripted. Bodies may be form-encoded (JSON-valued fields such as ``blocks`` arrive as
JSON strings), multipart, or JSON; the token comes from ``Authorization: Bearer`` or, for
form bodies, a ``token`` field. Block Kit limits are enforced: messages answer
``invalid_blocks`` with ``errors`` (json-pointer messages, as Slack words them), views
answer ``invalid_arguments`` with ``response_metadata.messages`` as Slack's views
methods do.

Trigger ids are issued by :meth:`SlackEmulator.new_trigger_id`, are single use and
expire 3 s after issue on the injectable clock ``now``. Socket Mode: ``apps.connections.open``
hands out a one-time ``ws://127.0.0.1:PORT/socket?ticket=...`` URL; the socket greets
with ``hello``; :meth:`SlackEmulator.send_socket_event` delivers an envelope and returns
the client's ack. Close Socket Mode clients before stopping the emulator, or they keep
reconnecting to a dead port.

:meth:`SlackEmulator.hold` makes a method's answers wait for the test (the message is
stored first), to stand for a request in flight when its client dies.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

TRIGGER_TTL = 3.0
"""Seconds a trigger id stays exchangeable after issue."""

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_VIEW_BYTES = 250_000
MAX_TEXT = 3000  # a section's text, a context text element
MAX_HEADER = 150
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255  # action_id, block_id, callback_id, external_id
MAX_INPUT_VALUE = 3000  # plain_text_input initial_value, min_length, max_length
MAX_PLACEHOLDER = 150
MAX_LABEL = 2000  # input label and hint, image alt_text and title
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_MODAL_TITLE = 24  # title, submit, close
MAX_PRIVATE_METADATA = 3000
MAX_MARKDOWN = 12_000
MAX_REPLIES_PAGE = 1000  # conversations.replies: the default and the largest ``limit``
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_]{1,255}$")

BLOCK_TYPES = frozenset(
    {
        "actions",
        "call",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
MAX_OPTIONS = {
    "static_select": 100,
    "multi_static_select": 100,
    "overflow": 5,
    "checkboxes": 10,
    "radio_buttons": 10,
}
JSON_FIELDS = ("blocks", "view", "attachments", "metadata")
"""Parameters that Slack takes as JSON; form bodies carry them as JSON strings."""

JSONDict = dict[str, Any]


@dataclass
class Call:
    """One Web API request as the emulator saw and answered it.

    ``params`` merges the query string and the body; JSON-valued fields (``blocks``,
    ``view``, ``attachments``, ``metadata``) are decoded to Python objects and a form
    ``token`` is moved to ``token``.
    """

    method: str
    params: JSONDict
    headers: dict[str, str]
    status: int
    response: JSONDict
    http_verb: str = "POST"
    token: str | None = None
    peer: tuple[str, int] | None = None  # the client's address and port: one per connection


def _peer(request: web.Request) -> tuple[str, int] | None:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return (str(peername[0]), int(peername[1])) if peername else None


# --------------------------------------------------------------------------- Block Kit


class _Problems:
    """Collects Block Kit violations as Slack words them, with json-pointers."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.items.append(f"{message} [json-pointer:{pointer}]")

    def schema(self, pointer: str) -> None:
        self.add("failed to match all allowed schemas", pointer)

    def string(self, value: Any, pointer: str, *, limit: int, required: bool = False) -> None:
        if value is None:
            if required:
                self.add("missing required field", pointer)
            return
        if not isinstance(value, str):
            self.add("must be a string", pointer)
        elif len(value) > limit:
            self.add(f"must be less than {limit + 1} characters", pointer)

    def text(
        self,
        obj: Any,
        pointer: str,
        *,
        limit: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        """A text object: ``{"type": "plain_text"|"mrkdwn", "text": "..."}``."""
        if obj is None:
            if required:
                self.add("missing required field", pointer)
            return
        if not isinstance(obj, dict) or obj.get("type") not in TEXT_TYPES:
            self.schema(pointer)
            return
        if plain_only and obj["type"] != "plain_text":
            self.add("must be one of: plain_text", f"{pointer}/type")
        value = obj.get("text")
        if not isinstance(value, str):
            self.add("must be a string", f"{pointer}/text")
        elif not value:
            self.add("must be more than 0 characters", f"{pointer}/text")
        elif len(value) > limit:
            self.add(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def array(self, value: Any, pointer: str, *, limit: int, minimum: int = 0) -> list[Any]:
        """Checks an array's size; returns its items (none if it is not an array)."""
        if value is None:
            if minimum:
                self.add("missing required field", pointer)
            return []
        if not isinstance(value, list):
            self.add("must be an array", pointer)
            return []
        if len(value) > limit:
            self.add(f"no more than {limit} items allowed", pointer)
        elif len(value) < minimum:
            self.add(f"must provide at least {minimum} items", pointer)
        return value


def _check_option(problems: _Problems, option: Any, pointer: str, *, plain_only: bool) -> None:
    if not isinstance(option, dict):
        problems.schema(pointer)
        return
    problems.text(
        option.get("text"), f"{pointer}/text", limit=MAX_OPTION_TEXT, plain_only=plain_only
    )
    problems.string(option.get("value"), f"{pointer}/value", limit=MAX_OPTION_VALUE)
    problems.text(
        option.get("description"), f"{pointer}/description", limit=MAX_OPTION_TEXT, required=False
    )
    problems.string(option.get("url"), f"{pointer}/url", limit=MAX_URL)


def _check_confirm(problems: _Problems, confirm: Any, pointer: str) -> None:
    if not isinstance(confirm, dict):
        problems.schema(pointer)
        return
    problems.text(confirm.get("title"), f"{pointer}/title", limit=100, plain_only=True)
    problems.text(confirm.get("text"), f"{pointer}/text", limit=300)
    problems.text(confirm.get("confirm"), f"{pointer}/confirm", limit=30, plain_only=True)
    problems.text(confirm.get("deny"), f"{pointer}/deny", limit=30, plain_only=True)


def _check_element(problems: _Problems, element: Any, pointer: str) -> None:
    """An interactive or image element: an accessory, an input's element, an action."""
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        problems.schema(pointer)
        return
    kind = element["type"]
    problems.string(element.get("action_id"), f"{pointer}/action_id", limit=MAX_ID)
    if kind == "button":
        problems.text(
            element.get("text"), f"{pointer}/text", limit=MAX_BUTTON_TEXT, plain_only=True
        )
        problems.string(element.get("value"), f"{pointer}/value", limit=MAX_BUTTON_VALUE)
        problems.string(element.get("url"), f"{pointer}/url", limit=MAX_URL)
    elif kind == "image":
        problems.string(
            element.get("alt_text"), f"{pointer}/alt_text", limit=MAX_LABEL, required=True
        )
        problems.string(element.get("image_url"), f"{pointer}/image_url", limit=MAX_URL)
    elif kind == "plain_text_input":
        problems.string(
            element.get("initial_value"), f"{pointer}/initial_value", limit=MAX_INPUT_VALUE
        )
        for key in ("min_length", "max_length"):
            bound = element.get(key)
            if bound is not None and (not isinstance(bound, int) or bound > MAX_INPUT_VALUE):
                problems.add(f"must be less than {MAX_INPUT_VALUE + 1}", f"{pointer}/{key}")
    if "placeholder" in element:
        problems.text(
            element["placeholder"], f"{pointer}/placeholder", limit=MAX_PLACEHOLDER, plain_only=True
        )
    plain_options = kind not in ("checkboxes", "radio_buttons")
    if kind in MAX_OPTIONS or "options" in element:
        limit = MAX_OPTIONS.get(kind, 100)
        for n, option in enumerate(
            problems.array(element.get("options"), f"{pointer}/options", limit=limit)
        ):
            _check_option(problems, option, f"{pointer}/options/{n}", plain_only=plain_options)
    for n, group in enumerate(
        problems.array(element.get("option_groups"), f"{pointer}/option_groups", limit=100)
    ):
        where = f"{pointer}/option_groups/{n}"
        if not isinstance(group, dict):
            problems.schema(where)
            continue
        problems.text(group.get("label"), f"{where}/label", limit=MAX_OPTION_TEXT, plain_only=True)
        for m, option in enumerate(
            problems.array(group.get("options"), f"{where}/options", limit=100, minimum=1)
        ):
            _check_option(problems, option, f"{where}/options/{m}", plain_only=True)
    if "initial_option" in element:
        _check_option(
            problems,
            element["initial_option"],
            f"{pointer}/initial_option",
            plain_only=plain_options,
        )
    for n, option in enumerate(
        problems.array(element.get("initial_options"), f"{pointer}/initial_options", limit=100)
    ):
        _check_option(problems, option, f"{pointer}/initial_options/{n}", plain_only=plain_options)
    if "confirm" in element:
        _check_confirm(problems, element["confirm"], f"{pointer}/confirm")


def _check_block(problems: _Problems, block: Any, pointer: str) -> None:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        problems.schema(pointer)
        return
    kind = block["type"]
    problems.string(block.get("block_id"), f"{pointer}/block_id", limit=MAX_ID)
    if kind == "section":
        if block.get("text") is None and block.get("fields") is None:
            problems.add("must provide either text or fields", pointer)
        problems.text(block.get("text"), f"{pointer}/text", limit=MAX_TEXT, required=False)
        for n, item in enumerate(
            problems.array(block.get("fields"), f"{pointer}/fields", limit=MAX_FIELDS)
        ):
            problems.text(item, f"{pointer}/fields/{n}", limit=MAX_FIELD)
        if "accessory" in block:
            _check_element(problems, block["accessory"], f"{pointer}/accessory")
    elif kind == "header":
        problems.text(block.get("text"), f"{pointer}/text", limit=MAX_HEADER, plain_only=True)
    elif kind == "actions":
        elements = problems.array(
            block.get("elements"), f"{pointer}/elements", limit=MAX_ACTIONS_ELEMENTS, minimum=1
        )
        for n, element in enumerate(elements):
            _check_element(problems, element, f"{pointer}/elements/{n}")
    elif kind == "context":
        elements = problems.array(
            block.get("elements"), f"{pointer}/elements", limit=MAX_CONTEXT_ELEMENTS, minimum=1
        )
        for n, element in enumerate(elements):
            where = f"{pointer}/elements/{n}"
            if isinstance(element, dict) and element.get("type") == "image":
                _check_element(problems, element, where)
            else:
                problems.text(element, where, limit=MAX_TEXT)
    elif kind == "input":
        problems.text(block.get("label"), f"{pointer}/label", limit=MAX_LABEL, plain_only=True)
        problems.text(
            block.get("hint"), f"{pointer}/hint", limit=MAX_LABEL, plain_only=True, required=False
        )
        _check_element(problems, block.get("element"), f"{pointer}/element")
    elif kind == "image":
        problems.string(
            block.get("alt_text"), f"{pointer}/alt_text", limit=MAX_LABEL, required=True
        )
        problems.string(block.get("image_url"), f"{pointer}/image_url", limit=MAX_URL)
        problems.text(
            block.get("title"), f"{pointer}/title", limit=MAX_LABEL, plain_only=True, required=False
        )
    elif kind == "markdown":
        problems.string(block.get("text"), f"{pointer}/text", limit=MAX_MARKDOWN, required=True)


def block_problems(
    blocks: Any, *, pointer: str = "/blocks", limit: int = MAX_MESSAGE_BLOCKS
) -> list[str]:
    """Slack's complaints about ``blocks`` (empty when they are acceptable)."""
    problems = _Problems()
    for n, block in enumerate(problems.array(blocks, pointer, limit=limit)):
        _check_block(problems, block, f"{pointer}/{n}")
    return problems.items


def view_problems(view: Any) -> list[str]:
    """Slack's complaints about a modal or home ``view`` (empty when it is acceptable)."""
    problems = _Problems()
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        problems.schema("/view")
        return problems.items
    if view["type"] == "modal":
        problems.text(view.get("title"), "/view/title", limit=MAX_MODAL_TITLE, plain_only=True)
        for key in ("submit", "close"):
            problems.text(
                view.get(key),
                f"/view/{key}",
                limit=MAX_MODAL_TITLE,
                plain_only=True,
                required=False,
            )
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            problems.add("must provide submit when the view has input blocks", "/view/submit")
    problems.string(view.get("callback_id"), "/view/callback_id", limit=MAX_ID)
    problems.string(view.get("external_id"), "/view/external_id", limit=MAX_ID)
    problems.string(
        view.get("private_metadata"), "/view/private_metadata", limit=MAX_PRIVATE_METADATA
    )
    if view.get("blocks") is None:
        problems.add("missing required field", "/view/blocks")
    else:
        problems.items += block_problems(
            view["blocks"], pointer="/view/blocks", limit=MAX_VIEW_BLOCKS
        )
    return problems.items


# --------------------------------------------------------------------------- the emulator


def _error(error: str, **extra: Any) -> JSONDict:
    return {"ok": False, "error": error, **extra}


def _invalid(error: str, problems: list[str], *, with_errors: bool) -> JSONDict:
    body = _error(error, response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
    if with_errors:
        body["errors"] = problems
    return body


def _flag(value: Any) -> bool | None:
    """A boolean parameter as JSON (true/false) or a form ("1", "true", "0", "false")."""
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def _text_param(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    return None if value is None else str(value)


def _next_cursor(ts: str) -> str:
    """A page cursor as Slack makes them: base64 of ``next_ts:<ts>``."""
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _cursor_ts(cursor: str) -> str | None:
    try:
        kind, _, ts = base64.b64decode(cursor, validate=True).decode().partition(":")
    except ValueError:
        return None
    return ts if kind == "next_ts" and ts.replace(".", "", 1).isdigit() else None


Handler = Callable[[JSONDict, str], Awaitable[JSONDict]]


@dataclass
class SlackEmulator:
    """The Slack Web API (and Socket Mode) on a random free port of 127.0.0.1.

    Configure before or during a test: ``usergroups`` (subteam id → user ids),
    ``channels`` (when set, other channels answer ``channel_not_found``), ``valid_tokens``
    (when set, other tokens answer ``invalid_auth``), ``now`` (the clock for trigger
    expiry). Inspect afterwards: ``calls``, ``messages``, ``ephemerals``, ``views``,
    ``socket_sent`` and ``socket_received``.

    Methods: ``auth.test``, ``chat.postMessage`` (``metadata`` checked like Slack:
    ``event_type`` and an object ``event_payload``, else ``invalid_metadata_format``),
    ``chat.update``, ``chat.postEphemeral``, ``conversations.replies`` (the parent first,
    then its replies oldest first, paged by ``limit``/``cursor``; message ``metadata`` only
    with ``include_all_metadata``), ``views.open``, ``views.update``,
    ``usergroups.users.list`` and ``apps.connections.open``.

    Holding answers, for a client that dies with a request in flight::

        gate = slack.hold("chat.postMessage")
        ...                                    # the client posts
        await slack.wait_held("chat.postMessage")  # Slack has stored the message
        ...                                    # kill the client
        gate.set()                             # or slack.release("chat.postMessage")

    From :meth:`hold` on, every call of that method is handled as usual (a posted message
    is stored and the call recorded in ``calls``) and then its answer waits until the
    gate, an ``asyncio.Event``, is set; later calls pass straight through. ``held(method)``
    counts the answers waiting now. :meth:`stop` opens every gate.
    """

    team_id: str = "T0SIGNOFF"
    team: str = "signoff-test"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    app_id: str = "A0SIGNOFF"
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channels: set[str] | None = None
    valid_tokens: set[str] | None = None
    now: Callable[[], float] = time.monotonic
    calls: list[Call] = field(default_factory=list)
    messages: defaultdict[str, list[JSONDict]] = field(default_factory=lambda: defaultdict(list))
    ephemerals: list[JSONDict] = field(default_factory=list)
    views: dict[str, JSONDict] = field(default_factory=dict)
    socket_sent: list[JSONDict] = field(default_factory=list)
    socket_received: list[JSONDict] = field(default_factory=list)
    socket_connections: int = 0
    url: str = ""
    socket_url: str = ""
    _runner: web.AppRunner | None = None
    _seq: int = 0
    _ts: int = 1_700_000_000_000_000
    _triggers: dict[str, float] = field(default_factory=dict)
    _exchanged: set[str] = field(default_factory=set)
    _limited: dict[str, deque[int]] = field(default_factory=dict)
    _failures: dict[str, deque[JSONDict]] = field(default_factory=dict)
    _tickets: set[str] = field(default_factory=set)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, asyncio.Future[JSONDict]] = field(default_factory=dict)
    _socket_change: asyncio.Condition | None = None
    _holds: dict[str, asyncio.Event] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)
    _held_change: asyncio.Condition | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self, port: int = 0) -> SlackEmulator:
        """Serve on 127.0.0.1 (``port`` 0 picks a free one); sets ``url`` and ``socket_url``."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/socket", self._socket)
        self._socket_change = asyncio.Condition()
        self._held_change = asyncio.Condition()
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        bound = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{bound}/api/"
        self.socket_url = f"ws://127.0.0.1:{bound}/socket"
        return self

    async def stop(self) -> None:
        """Open held answers' gates, close open sockets (1001, going away) and the server."""
        for gate in self._holds.values():
            gate.set()
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server stopping")
        for pending in self._acks.values():
            pending.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---------------------------------------------------------------- scripting

    def new_trigger_id(self) -> str:
        """Issue a trigger id, as Slack puts in an interaction; it expires after 3 s."""
        trigger = f"{self._next()}.{self._next()}.{secrets.token_hex(16)}"
        self._triggers[trigger] = self.now()
        return trigger

    def rate_limit(
        self, method: str = "chat.postMessage", *, times: int = 1, retry_after: int = 1
    ) -> None:
        """The next ``times`` calls to ``method`` answer 429 with ``Retry-After: retry_after``."""
        self._limited.setdefault(method, deque()).extend([retry_after] * times)

    def fail(self, method: str, error: str, *, times: int = 1, **extra: Any) -> None:
        """The next ``times`` calls to ``method`` answer ``{"ok": false, "error": error}``.

        ``extra`` keys are added to that answer.
        """
        self._failures.setdefault(method, deque()).extend([_error(error, **extra)] * times)

    def hold(self, method: str = "chat.postMessage") -> asyncio.Event:
        """From now on answers to ``method`` wait, after the call has had its effect, until
        the returned event is set (see the class docstring)."""
        gate = asyncio.Event()
        self._holds[method] = gate
        return gate

    def release(self, method: str = "chat.postMessage") -> None:
        """Let the held answers to ``method`` go, and stop holding it."""
        gate = self._holds.pop(method, None)
        if gate is not None:
            gate.set()

    def held(self, method: str = "chat.postMessage") -> int:
        """How many answers to ``method`` are waiting at its gate now."""
        return self._held.get(method, 0)

    async def wait_held(
        self, method: str = "chat.postMessage", *, count: int = 1, within: float = 5.0
    ) -> None:
        """Wait until ``count`` answers to ``method`` are waiting at its gate; raises
        ``TimeoutError`` after ``within`` seconds."""
        assert self._held_change is not None, "start() the emulator first"
        async with asyncio.timeout(within), self._held_change:
            await self._held_change.wait_for(lambda: self.held(method) >= count)

    async def _wait_at_gate(self, method: str) -> None:
        gate = self._holds.get(method)
        if gate is None or gate.is_set():
            return
        assert self._held_change is not None
        async with self._held_change:
            self._held[method] = self._held.get(method, 0) + 1
            self._held_change.notify_all()
        try:
            await gate.wait()
        finally:
            async with self._held_change:
                self._held[method] -= 1
                self._held_change.notify_all()

    # ---------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one Web API method, oldest first (429s included)."""
        return [c for c in self.calls if c.method == method]

    def message(self, channel: str, ts: str) -> JSONDict | None:
        """The stored message at ``ts`` in ``channel``, if any."""
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    # ---------------------------------------------------------------- Socket Mode

    @property
    def open_sockets(self) -> int:
        """Socket Mode connections open right now."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def wait_for_socket(
        self, *, connections: int = 1, exactly_open: int | None = None, within: float = 5.0
    ) -> None:
        """Wait until ``connections`` sockets have been made in total and one is open.

        With ``exactly_open``, wait until exactly that many are open (a reconnecting client
        closes its old socket). Raises ``TimeoutError`` after ``within`` seconds.
        """
        assert self._socket_change is not None, "start() the emulator first"

        def ready() -> bool:
            enough_open = (
                self.open_sockets > 0
                if exactly_open is None
                else (self.open_sockets == exactly_open)
            )
            return enough_open and self.socket_connections >= connections

        async with asyncio.timeout(within), self._socket_change:
            await self._socket_change.wait_for(ready)

    async def send_socket_event(self, envelope: JSONDict, *, within: float = 3.0) -> JSONDict:
        """Deliver an envelope to the newest open socket; return the client's ack.

        Missing ``envelope_id`` and ``accepts_response_payload`` are filled in (and
        ``retry_attempt``/``retry_reason`` for ``events_api``). Raises ``TimeoutError``
        when no socket opens or no ack arrives ``within`` seconds.
        """
        envelope = dict(envelope)
        envelope.setdefault("envelope_id", secrets.token_hex(16))
        envelope.setdefault("accepts_response_payload", False)
        if envelope.get("type") == "events_api":
            envelope.setdefault("retry_attempt", 0)
            envelope.setdefault("retry_reason", "")
        await self.wait_for_socket(within=within)
        ws = [s for s in self._sockets if not s.closed][-1]
        ack: asyncio.Future[JSONDict] = asyncio.get_running_loop().create_future()
        self._acks[envelope["envelope_id"]] = ack
        try:
            self.socket_sent.append(envelope)
            await ws.send_str(json.dumps(envelope))
            async with asyncio.timeout(within):
                return await ack
        finally:
            self._acks.pop(envelope["envelope_id"], None)

    async def disconnect_socket(self, reason: str = "refresh_requested") -> None:
        """Ask the connected clients to reconnect, as Slack does before it rotates a socket."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "emulator"}}
        for ws in [s for s in self._sockets if not s.closed]:
            self.socket_sent.append(message)
            await ws.send_str(json.dumps(message))

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid or used ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": self.open_sockets,
                    "debug_info": {
                        "host": "emulator",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        await self._socket_changed()
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(frame.data)
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                self.socket_received.append(data)
                pending = self._acks.get(str(data.get("envelope_id")))
                if pending is not None and not pending.done():
                    pending.set_result(data)
        finally:
            self._sockets.remove(ws)
            await self._socket_changed()
        return ws

    async def _socket_changed(self) -> None:
        if self._socket_change is not None:
            async with self._socket_change:
                self._socket_change.notify_all()

    # ---------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: JSONDict = dict(request.query)
        form_token: str | None = params.pop("token", None)
        body_error: str | None = None
        if request.can_read_body:
            body_error, body, body_token = await self._read_body(request)
            params.update(body)
            form_token = body_token or form_token
        bad_json = [key for key in JSON_FIELDS if not self._decode_field(params, key)]

        token = form_token
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()

        status, headers = 200, {}
        response = None if body_error is None else _error(body_error)
        if response is None and self._limited.get(method):
            retry_after = self._limited[method].popleft()
            status, headers = 429, {"Retry-After": str(retry_after)}
            response = _error("ratelimited")
        if response is None:
            response = self._auth_problem(method, token)
        if response is None and self._failures.get(method):
            response = self._failures[method].popleft()
        if response is None and bad_json:
            response = _error(
                "invalid_blocks_format" if "blocks" in bad_json else "invalid_arguments"
            )
        if response is None:
            handler = self._methods().get(method)
            if handler is None:
                status, response = 404, _error("unknown_method", req_method=method)
            else:
                response = await handler(params, token or "")

        self.calls.append(
            Call(
                method=method,
                params=params,
                headers=dict(request.headers),
                status=status,
                response=response,
                http_verb=request.method,
                token=token,
                peer=_peer(request),
            )
        )
        await self._wait_at_gate(method)
        return web.Response(
            status=status,
            headers=headers,
            text=json.dumps(response),
            content_type="application/json",
            charset="utf-8",
        )

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[str | None, JSONDict, str | None]:
        """(error, params, token) of a form, multipart or JSON body."""
        kind = request.content_type
        if kind == "application/json":
            raw = await request.text()
            if not raw.strip():
                return None, {}, None
            try:
                data = json.loads(raw)
            except ValueError:
                return "invalid_json", {}, None
            if not isinstance(data, dict):
                return "invalid_json", {}, None
            data.pop("token", None)  # Slack reads a JSON body's token only from the header
            return None, data, None
        if kind in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
            form = await request.post()
            fields: JSONDict = {k: v for k, v in form.items() if isinstance(v, str)}
            token = fields.pop("token", None)
            return None, fields, token
        if await request.read():
            return "invalid_post_type", {}, None
        return None, {}, None

    @staticmethod
    def _decode_field(params: JSONDict, key: str) -> bool:
        """Decode a JSON string field in place; False when it is not valid JSON."""
        value = params.get(key)
        if not isinstance(value, str):
            return True
        try:
            params[key] = json.loads(value)
        except ValueError:
            return False
        return True

    def _auth_problem(self, method: str, token: str | None) -> JSONDict | None:
        if not token:
            return _error("not_authed")
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return _error("invalid_auth")
        app_level = token.startswith("xapp-")
        if method == "apps.connections.open" and not app_level:
            return _error("not_allowed_token_type")
        if app_level and method not in ("apps.connections.open", "auth.test"):
            return _error("not_allowed_token_type")
        return None

    def _methods(self) -> dict[str, Handler]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.replies": self._replies,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "usergroups.users.list": self._usergroup_users,
            "apps.connections.open": self._connections_open,
        }

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _next_ts(self) -> str:
        self._ts += 100
        return f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    def _channel_problem(self, params: JSONDict) -> JSONDict | None:
        channel = params.get("channel")
        if not channel or (self.channels is not None and channel not in self.channels):
            return _error("channel_not_found")
        return None

    @staticmethod
    def _content_problem(params: JSONDict, *, required: bool = True) -> JSONDict | None:
        text, blocks = params.get("text"), params.get("blocks")
        if required and not text and not blocks and not params.get("attachments"):
            return _error("no_text")
        if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
            return _error("msg_too_long")
        if blocks is not None:
            problems = block_problems(blocks)
            if problems:
                return _invalid("invalid_blocks", problems, with_errors=True)
        return None

    @staticmethod
    def _metadata_problem(params: JSONDict) -> JSONDict | None:
        """Message metadata must be ``{"event_type": name, "event_payload": {...}}``."""
        metadata = params.get("metadata")
        if metadata is None:
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not EVENT_TYPE.match(metadata["event_type"])
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            return _error("invalid_metadata_format")
        return None

    def _visible(self, message: JSONDict, *, metadata: bool = True) -> JSONDict:
        """A stored message as Slack returns it: no empty keys, no emulator bookkeeping."""
        hidden = {"channel", "unfurl_links", "unfurl_media"} | (set() if metadata else {"metadata"})
        return {k: v for k, v in message.items() if v is not None and k not in hidden}

    # ---------------------------------------------------------------- methods

    async def _auth_test(self, params: JSONDict, token: str) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{self.team}.slack.com/",
            "team": self.team,
            "user": "signoff",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _post_message(self, params: JSONDict, token: str) -> JSONDict:
        problem = (
            self._channel_problem(params)
            or self._content_problem(params)
            or self._metadata_problem(params)
        )
        if problem is not None:
            return problem
        channel = str(params["channel"])
        thread_ts = _text_param(params, "thread_ts")
        message: JSONDict = {
            "type": "message",
            "ts": self._next_ts(),
            "text": _text_param(params, "text") or "",
            "blocks": params.get("blocks"),
            "thread_ts": thread_ts,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "attachments": params.get("attachments"),
            "metadata": params.get("metadata"),
            "channel": channel,
            "unfurl_links": _flag(params.get("unfurl_links")),
            "unfurl_media": _flag(params.get("unfurl_media")),
        }
        self.messages[channel].append(message)
        if thread_ts is not None:
            parent = self.message(channel, thread_ts)
            if parent is not None:
                parent["reply_count"] = int(parent.get("reply_count") or 0) + 1
                parent["latest_reply"] = message["ts"]
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "message": self._visible(message),
        }

    async def _update(self, params: JSONDict, token: str) -> JSONDict:
        problem = (
            self._channel_problem(params)
            or self._content_problem(params)
            or self._metadata_problem(params)
        )
        if problem is not None:
            return problem
        channel, ts = str(params["channel"]), _text_param(params, "ts") or ""
        message = self.message(channel, ts)
        if message is None:
            return _error("message_not_found")
        if params.get("text") is not None:
            message["text"] = str(params["text"])
        # Slack keeps the previous blocks/attachments when the field is left out.
        for key in ("blocks", "attachments", "metadata"):
            if key in params:
                message[key] = params[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": self._visible(message),
        }

    async def _replies(self, params: JSONDict, token: str) -> JSONDict:
        """conversations.replies: a thread's parent, then its replies oldest first."""
        problem = self._channel_problem(params)
        if problem is not None:
            return problem
        ts = _text_param(params, "ts")
        if not ts:
            return _invalid("invalid_arguments", ["missing required field: ts"], with_errors=False)
        channel = str(params["channel"])
        found = self.message(channel, ts)
        # A reply's ts stands for its whole thread.
        root = self.message(channel, found["thread_ts"]) if found and found["thread_ts"] else found
        if root is None:
            return _error("thread_not_found")
        try:
            limit = int(params.get("limit") or MAX_REPLIES_PAGE)
        except ValueError:
            return _error("invalid_limit")
        limit = max(1, min(limit, MAX_REPLIES_PAGE))
        replies = [
            m
            for m in self.messages[channel]
            if m["thread_ts"] == root["ts"] and m["ts"] != root["ts"]
        ]
        cursor = _text_param(params, "cursor")
        if cursor:
            start = _cursor_ts(cursor)
            if start is None:
                return _error("invalid_cursor")
            page: list[JSONDict] = [m for m in replies if float(m["ts"]) >= float(start)]
        else:
            page = [root, *replies]  # the parent comes on the first page only
        rest = page[limit:]
        page = page[:limit]
        with_metadata = bool(_flag(params.get("include_all_metadata")))
        shown = [self._visible(m, metadata=with_metadata) for m in page]
        if replies:  # the parent of a thread carries its own ts as thread_ts
            for message in shown:
                message["thread_ts"] = root["ts"]
        next_cursor = _next_cursor(rest[0]["ts"]) if rest else ""
        return {
            "ok": True,
            "messages": shown,
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": next_cursor},
        }

    async def _post_ephemeral(self, params: JSONDict, token: str) -> JSONDict:
        problem = self._channel_problem(params) or self._content_problem(params)
        if problem is not None:
            return problem
        if not params.get("user"):
            return _error("user_not_found")
        message_ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": str(params["channel"]),
                "user": str(params["user"]),
                "text": _text_param(params, "text") or "",
                "blocks": params.get("blocks"),
                "thread_ts": _text_param(params, "thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"ok": True, "message_ts": message_ts}

    def _view_problem(self, view: Any) -> JSONDict | None:
        if view is None:
            return _invalid(
                "invalid_arguments", ["missing required field: view"], with_errors=False
            )
        if len(json.dumps(view)) > MAX_VIEW_BYTES:
            return _error("view_too_large")
        problems = view_problems(view)
        if problems:
            return _invalid("invalid_arguments", problems, with_errors=False)
        return None

    def _stored_view(self, view: JSONDict, *, view_id: str, previous: JSONDict | None) -> JSONDict:
        stored: JSONDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{1_700_000_000 + self._next()}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": previous["root_view_id"] if previous else view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return {k: v for k, v in stored.items() if v is not None or k == "previous_view_id"}

    async def _views_open(self, params: JSONDict, token: str) -> JSONDict:
        trigger = _text_param(params, "trigger_id") or _text_param(params, "interactivity_pointer")
        if not trigger:
            return _invalid(
                "invalid_arguments", ["missing required field: trigger_id"], with_errors=False
            )
        if trigger in self._exchanged:
            return _error("exchanged_trigger_id")
        issued = self._triggers.get(trigger)
        if issued is None:
            return _error("invalid_trigger_id")
        if self.now() - issued >= TRIGGER_TTL:
            return _error("expired_trigger_id")
        view = params.get("view")
        problem = self._view_problem(view)
        if problem is not None:
            return problem
        assert isinstance(view, dict)
        external = view.get("external_id")
        if external and any(v.get("external_id") == external for v in self.views.values()):
            return _error("duplicate_external_id")
        self._exchanged.add(trigger)
        view_id = f"V{self._next():08d}"
        self.views[view_id] = self._stored_view(view, view_id=view_id, previous=None)
        return {"ok": True, "view": self.views[view_id]}

    async def _views_update(self, params: JSONDict, token: str) -> JSONDict:
        view_id, external = _text_param(params, "view_id"), _text_param(params, "external_id")
        current: JSONDict | None = None
        if view_id:
            current = self.views.get(view_id)
        elif external:
            current = next(
                (v for v in self.views.values() if v.get("external_id") == external), None
            )
        if current is None:
            return _error("not_found")
        given_hash = _text_param(params, "hash")
        if given_hash is not None and given_hash != current["hash"]:
            return _error("hash_conflict")
        view = params.get("view")
        problem = self._view_problem(view)
        if problem is not None:
            return problem
        assert isinstance(view, dict)
        updated = self._stored_view(view, view_id=current["id"], previous=current)
        if not updated.get("external_id"):
            updated["external_id"] = current.get("external_id", "")
        self.views[current["id"]] = updated
        return {"ok": True, "view": updated}

    async def _usergroup_users(self, params: JSONDict, token: str) -> JSONDict:
        group = _text_param(params, "usergroup")
        if group is None or group not in self.usergroups:
            return _error("no_such_subteam")
        return {"ok": True, "users": list(self.usergroups[group])}

    async def _connections_open(self, params: JSONDict, token: str) -> JSONDict:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}&app_id={self.app_id}"}
