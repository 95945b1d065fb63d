"""A loopback fake of Discord's REST API and gateway that the real ``discord.py`` connects to.

One aiohttp server on 127.0.0.1 (random port) serves both halves::

    fake = DiscordFake()
    await fake.start()
    with fake.patch_discord():          # Route.BASE and DEFAULT_GATEWAY point here
        client = discord.Client(intents=discord.Intents.default())
        await client.login("token")
        task = asyncio.create_task(client.connect())
        await fake.wait_ready()
        ...
        await client.close()
    await fake.stop()

REST (``/api/v10/...``) answers with ``Content-Type: application/json`` exactly (discord.py
compares the header verbatim), records every call in :attr:`DiscordFake.requests`, and
answers unknown routes with 404 ``{"message": "Unknown route", "code": 0}``. Scripted 429s
(:meth:`DiscordFake.rate_limit`) carry ``Via`` (without it discord.py assumes a Cloudflare
ban), ``retry_after`` in the body and the ``X-RateLimit-*`` headers; other errors are
scripted with :meth:`DiscordFake.fail`.

Posting a message checks what Discord checks (else 400 ``Invalid Form Body``, code 50035):
content of at most 2000 characters; ``allowed_mentions`` (``parse`` and an id list of the
same kind exclude each other, at most 100 ids each); a ``message_reference`` to a message
of the channel (unless ``fail_if_not_exists`` is false). A reply is stored as type 19 with
its ``message_reference`` and a copy of the message it replies to (``referenced_message``).
``GET /channels/{id}/messages`` pages like Discord: ``limit`` 1-100 (default 50), at most
one of ``before``/``after``, newest first, ephemeral messages left out.
``GET /guilds/{id}/roles`` lists the guild's roles.

The gateway (``ws://127.0.0.1:PORT/gateway``) greets with HELLO, acknowledges heartbeats,
answers IDENTIFY with READY and one GUILD_CREATE (guild, text channel, roles, members),
RESUME with RESUMED and REQUEST_GUILD_MEMBERS with a GUILD_MEMBERS_CHUNK. With
``compress=zlib-stream`` in the query (discord.py's default when ``zstandard`` is missing)
every frame is one shared zlib stream, each message flushed with ``Z_SYNC_FLUSH``.

Interactions behave like Discord's: a callback must arrive within ``interaction_ttl``
seconds of the INTERACTION_CREATE (else 404 ``Unknown interaction``, code 10062) and only
once (else 400, code 40060).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yarl
from aiohttp import BodyPartReader, WSMsgType, web

DISCORD_EPOCH_MS = 1_420_070_400_000
API_VERSION = 10

# Gateway opcodes
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE = 3
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# Interaction callback types (Discord's InteractionResponseType)
CALLBACK_PONG = 1
CALLBACK_MESSAGE = 4
CALLBACK_DEFERRED_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE = 6
CALLBACK_UPDATE_MESSAGE = 7

ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = 1_071_698_660_929  # Discord's default @everyone set
ADMINISTRATOR = 1 << 3
EPHEMERAL = 1 << 6  # message flag
MAX_CONTENT = 2000
MAX_MENTION_IDS = 100


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _invalid_form(field: str, code: str, message: str) -> tuple[int, Any]:
    """Discord's 400 for a bad request body, with the offending field's error."""
    errors = {field: {"_errors": [{"code": code, "message": message}]}}
    return 400, {"message": "Invalid Form Body", "code": 50035, "errors": errors}


@dataclass
class Upload:
    """One file part of a multipart request."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class Req:
    """One REST call as the fake saw it. ``path`` is relative to ``/api/v10``."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[Upload]
    headers: dict[str, str]
    status: int = 0
    route: str | None = None
    at: float = 0.0

    @property
    def unhandled(self) -> bool:
        return self.route is None


@dataclass
class Callback:
    """An interaction response (``POST /interactions/{id}/{token}/callback``)."""

    interaction_id: int
    token: str
    type: int
    data: dict[str, Any] | None
    files: list[Upload]
    received_at: float
    latency: float
    """Seconds between :meth:`DiscordFake.send_interaction` and the callback's arrival."""


@dataclass
class _RateLimit:
    method: str | None
    path_contains: str
    times: int
    retry_after: float
    scope: str
    is_global: bool
    bucket: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class _Failure:
    method: str | None
    path_contains: str
    times: int
    status: int
    body: dict[str, Any]


@dataclass
class _Interaction:
    payload: dict[str, Any]
    sent_at: float
    acknowledged: bool = False
    original_message_id: int | None = None


class _GatewayConn:
    """One websocket client of the fake gateway."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self.seq = 0
        self.session_id: str | None = None
        self.identify: dict[str, Any] | None = None
        self._compressor = zlib.compressobj() if zlib_stream else None
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload, separators=(",", ":"))
        # The lock keeps compress+send atomic: the zlib stream is ordered.
        async with self._lock:
            if self._compressor is None:
                await self.ws.send_str(raw)
            else:
                chunk = self._compressor.compress(raw.encode())
                chunk += self._compressor.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(chunk)

    async def dispatch(self, event: str, data: Any) -> int:
        self.seq += 1
        await self.send({"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data})
        return self.seq


class DiscordFake:
    """Discord's REST API and gateway on loopback for the real discord.py client."""

    def __init__(
        self,
        *,
        guild_id: int = 1_180_000_000_000_000_001,
        channel_id: int = 1_180_000_000_000_000_002,
        application_id: int = 1_180_000_000_000_000_003,
        bot_user_id: int | None = None,
        bot_username: str = "signoff",
        guild_name: str = "Signoff Test Guild",
        channel_name: str = "reviews",
        members: dict[int, dict[str, Any]] | None = None,
        roles: dict[int, dict[str, Any] | str] | None = None,
        token: str | None = None,
        heartbeat_interval_ms: int = 41_250,
        interaction_ttl: float = 3.0,
    ) -> None:
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.application_id = application_id
        self.bot_user_id = bot_user_id if bot_user_id is not None else application_id
        self.bot_username = bot_username
        self.guild_name = guild_name
        self.channel_name = channel_name
        self.roles: dict[int, dict[str, Any] | str] = (
            roles if roles is not None else {1_180_000_000_000_000_010: "reviewer"}
        )
        default_role = next(iter(self.roles), None)
        self.members: dict[int, dict[str, Any]] = (
            members
            if members is not None
            else {
                1_180_000_000_000_000_020: {
                    "username": "lead",
                    "roles": [default_role] if default_role else [],
                },
                1_180_000_000_000_000_021: {"username": "intern", "roles": []},
            }
        )
        self.token = token
        """When set, REST calls and IDENTIFY must carry exactly this bot token."""
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_ttl = interaction_ttl

        self.requests: list[Req] = []
        self.messages: dict[int, dict[str, Any]] = {}
        """Messages by id, as the fake would return them (``channel_id`` inside)."""
        self.uploads: dict[int, list[Upload]] = {}
        """Files attached to each message id, bytes included."""
        self.callbacks: list[Callback] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        """Bulk-overwritten application commands: ``None`` is global, else guild id."""
        self.gateway_connects: list[dict[str, str]] = []
        """The query of every gateway connection (``v``, ``encoding``, ``compress``)."""
        self.gateway_received: list[dict[str, Any]] = []
        """Every frame the client sent over the gateway (heartbeats included)."""

        self._rate_limits: list[_RateLimit] = []
        self._failures: list[_Failure] = []
        self._interactions: dict[int, _Interaction] = {}
        self._conns: list[_GatewayConn] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._ready: asyncio.Event | None = None
        self._callback_arrived: asyncio.Condition | None = None
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> DiscordFake:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._ready = asyncio.Event()
        self._callback_arrived = asyncio.Condition()
        return self

    async def stop(self) -> None:
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001)
        self._conns.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordFake:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at the fake; restore on exit."""
        import discord.gateway
        import discord.http

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.rest_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ------------------------------------------------------------------ test controls

    def rate_limit(
        self,
        method: str | None = "POST",
        path_contains: str = "/messages",
        *,
        times: int = 1,
        retry_after: float = 0.05,
        scope: str = "user",
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` matching REST calls with 429."""
        self._rate_limits.append(
            _RateLimit(
                method=method.upper() if method else None,
                path_contains=path_contains,
                times=times,
                retry_after=retry_after,
                scope=scope,
                is_global=is_global,
            )
        )

    def fail(
        self,
        method: str | None = "GET",
        path_contains: str = "/messages",
        *,
        times: int = 1,
        status: int = 403,
        code: int = 50001,
        message: str = "Missing Access",
    ) -> None:
        """Answer the next ``times`` matching REST calls with ``status`` and Discord's
        error body ``{"message": message, "code": code}`` (default: 403 Missing Access)."""
        self._failures.append(
            _Failure(
                method=method.upper() if method else None,
                path_contains=path_contains,
                times=times,
                status=status,
                body={"message": message, "code": code},
            )
        )

    async def wait_ready(self, within: float = 5.0) -> None:
        """Until a client has IDENTIFYed and READY + GUILD_CREATE went out."""
        assert self._ready is not None, "start() the fake first"
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise TimeoutError(
                f"no IDENTIFY within {within}s; unhandled REST calls: "
                f"{[(r.method, r.path) for r in self.unhandled]}"
            ) from None

    @property
    def unhandled(self) -> list[Req]:
        """REST calls that hit no route (answered 404 ``Unknown route``)."""
        return [r for r in self.requests if r.unhandled]

    def requests_to(self, method: str, path_contains: str) -> list[Req]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def messages_in(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        cid = str(channel_id or self.channel_id)
        return [m for m in self.messages.values() if m["channel_id"] == cid]

    async def send_interaction(self, data: dict[str, Any]) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE to the most recent identified gateway client."""
        conn = self._live_conn()
        self._interactions[int(data["id"])] = _Interaction(payload=data, sent_at=time.monotonic())
        await conn.dispatch("INTERACTION_CREATE", data)
        return data

    async def dispatch(self, event: str, data: Any) -> int:
        """Dispatch any gateway event; returns its sequence number."""
        return await self._live_conn().dispatch(event, data)

    async def wait_for_callback(self, interaction_id: int | str, within: float = 3.0) -> Callback:
        assert self._callback_arrived is not None, "start() the fake first"
        iid = int(interaction_id)

        def found() -> Callback | None:
            return next((c for c in self.callbacks if c.interaction_id == iid), None)

        async with self._callback_arrived:
            try:
                await asyncio.wait_for(self._callback_arrived.wait_for(found), within)
            except TimeoutError:
                raise TimeoutError(f"no callback for interaction {iid} within {within}s") from None
        result = found()
        assert result is not None
        return result

    def button_interaction(
        self,
        *,
        custom_id: str,
        user_id: int,
        message_id: int,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """A component interaction (type 3) as Discord sends it for a click on ``message_id``."""
        if message_id not in self.messages:
            raise KeyError(f"message {message_id} was never posted to the fake")
        if user_id not in self.members:
            raise KeyError(f"user {user_id} is not a member of the fake guild")
        message = self.messages[message_id]
        inner: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            inner["values"] = values
        return {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": 3,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "channel_id": message["channel_id"],
            "channel": self._channel_payload(),
            "member": self._member_payload(user_id, with_permissions=True),
            "message": message,
            "data": inner,
            "app_permissions": str(self._permissions_of(self.bot_user_id)),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 10_485_760,
        }

    def snowflake(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (1 << 17) | (next(self._ids) & 0xFFF)

    # ------------------------------------------------------------------ payloads

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": str(self.bot_user_id),
            "username": self.bot_username,
            "discriminator": "0000",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
            "email": None,
            "locale": "en-US",
        }

    def _user_payload(self, user_id: int) -> dict[str, Any]:
        info = self.members[user_id]
        return {
            "id": str(user_id),
            "username": info.get("username", f"user{user_id}"),
            "discriminator": "0",
            "global_name": info.get("global_name"),
            "avatar": None,
            "public_flags": 0,
            "bot": bool(info.get("bot", False)),
        }

    def _role_payloads(self) -> list[dict[str, Any]]:
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str(EVERYONE_PERMISSIONS),
            "position": 0,
        }
        out = [everyone]
        for position, (role_id, spec) in enumerate(self.roles.items(), start=1):
            info = {"name": spec} if isinstance(spec, str) else dict(spec)
            out.append(
                {
                    "id": str(role_id),
                    "name": info.get("name", f"role{role_id}"),
                    "permissions": str(info.get("permissions", EVERYONE_PERMISSIONS)),
                    "position": info.get("position", position),
                }
            )
        for role in out:
            role.update(
                {
                    "color": 0,
                    "colors": {
                        "primary_color": 0,
                        "secondary_color": None,
                        "tertiary_color": None,
                    },
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "icon": None,
                    "unicode_emoji": None,
                    "flags": 0,
                }
            )
        return out

    def _permissions_of(self, user_id: int) -> int:
        if user_id == self.bot_user_id:
            return ALL_PERMISSIONS
        role_ids = {str(r) for r in self.members.get(user_id, {}).get("roles", [])}
        perms = 0
        for role in self._role_payloads():
            if role["id"] == str(self.guild_id) or role["id"] in role_ids:
                perms |= int(role["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def _member_payload(self, user_id: int, *, with_permissions: bool = False) -> dict[str, Any]:
        if user_id == self.bot_user_id:
            user, roles = self.bot_user(), []
        else:
            user = self._user_payload(user_id)
            roles = [str(r) for r in self.members[user_id].get("roles", [])]
        member: dict[str, Any] = {
            "user": user,
            "roles": roles,
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_permissions:
            member["permissions"] = str(self._permissions_of(user_id))
        return member

    def _channel_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.channel_name,
            "position": 0,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }

    def _guild_payload(self) -> dict[str, Any]:
        member_ids = [self.bot_user_id, *self.members]
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "owner_id": str(next(iter(self.members), self.bot_user_id)),
            "unavailable": False,
            "large": False,
            "member_count": len(member_ids),
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "features": [],
            "roles": self._role_payloads(),
            "emojis": [],
            "stickers": [],
            "channels": [self._channel_payload()],
            "threads": [],
            "members": [self._member_payload(uid) for uid in member_ids],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
        }

    def _ready_payload(self, conn: _GatewayConn) -> dict[str, Any]:
        return {
            "v": API_VERSION,
            "user": self.bot_user(),
            "user_settings": {},
            "session_id": conn.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["loopback"],
            "auth": {},
            "_trace": ['["gateway-fake",{"micros":0}]'],
        }

    def _application_payload(self) -> dict[str, Any]:
        owner = next(iter(self.members), self.bot_user_id)
        return {
            "id": str(self.application_id),
            "name": self.bot_username,
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": self._user_payload(owner) if owner in self.members else self.bot_user(),
            "team": None,
            "bot": self.bot_user(),
            "summary": "",
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
        }

    # ------------------------------------------------------------------ gateway

    def _live_conn(self) -> _GatewayConn:
        live = [c for c in self._conns if c.identify is not None and not c.ws.closed]
        if not live:
            raise RuntimeError("no identified gateway client is connected")
        return live[-1]

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        query = request.query
        self.gateway_connects.append(dict(query))
        if query.get("encoding", "json") != "json":
            await ws.close(code=4002, message=b"only encoding=json is faked")
            return ws
        if query.get("v", str(API_VERSION)) != str(API_VERSION):
            await ws.close(code=4012, message=b"Invalid API version")
            return ws
        compress = query.get("compress")
        if compress not in (None, "", "zlib-stream"):
            await ws.close(code=4000, message=f"compress={compress} is not faked".encode())
            return ws
        conn = _GatewayConn(ws, zlib_stream=compress == "zlib-stream")
        self._conns.append(conn)
        try:
            await conn.send(
                {
                    "op": OP_HELLO,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": []},
                    "s": None,
                    "t": None,
                }
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.gateway_received.append(frame)
                await self._on_frame(conn, frame)
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
        return ws

    async def _on_frame(self, conn: _GatewayConn, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        raw_d = frame.get("d")
        d: dict[str, Any] = raw_d if isinstance(raw_d, dict) else {}
        if op == OP_HEARTBEAT:
            await conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            if self.token is not None and d.get("token") != self.token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            conn.identify = d
            conn.session_id = secrets.token_hex(16)
            await conn.dispatch("READY", self._ready_payload(conn))
            await conn.dispatch("GUILD_CREATE", self._guild_payload())
            assert self._ready is not None
            self._ready.set()
        elif op == OP_RESUME:
            conn.identify = d
            conn.session_id = d.get("session_id")
            conn.seq = int(d.get("seq") or 0)
            await conn.dispatch("RESUMED", {"_trace": []})
        elif op == OP_REQUEST_MEMBERS:
            chunk: dict[str, Any] = {
                "guild_id": str(self.guild_id),
                "members": [self._member_payload(u) for u in [self.bot_user_id, *self.members]],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if d.get("nonce"):
                chunk["nonce"] = d["nonce"]
            await conn.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ REST plumbing

    def _build_routes(
        self,
    ) -> list[tuple[str, re.Pattern[str], str, Callable[..., Awaitable[tuple[int, Any]]]]]:
        table: list[tuple[str, str, Callable[..., Awaitable[tuple[int, Any]]]]] = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/messages", self._create_message),
            ("GET", "/channels/{channel_id}/messages", self._list_messages),
            ("GET", "/guilds/{guild_id}/roles", self._get_roles),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", self._followup),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._edit_webhook),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
        ]
        compiled = []
        for method, template, handler in table:
            pattern = re.escape(template)
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
            compiled.append((method, re.compile(f"^{pattern}$"), template, handler))
        return compiled

    @staticmethod
    def _json_response(
        status: int, body: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        if status == 204:
            return web.Response(status=204, headers=headers)
        payload = json.dumps(body).encode()
        return web.Response(
            status=status,
            body=payload,
            headers={**(headers or {}), "Content-Type": "application/json"},
        )

    async def _read_body(self, request: web.Request) -> tuple[Any, list[Upload]]:
        ctype = request.headers.get("Content-Type", "")
        files: list[Upload] = []
        if ctype.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue  # nested multipart: Discord does not take these
                data = await part.read(decode=False)
                name = part.name or ""
                if name == "payload_json":
                    body = json.loads(data)
                elif part.filename is not None:
                    files.append(
                        Upload(
                            field=name,
                            filename=part.filename,
                            content_type=part.headers.get("Content-Type"),
                            data=bytes(data),
                        )
                    )
            return body, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError:
            return raw.decode(errors="replace"), files

    async def _rest(self, request: web.Request) -> web.Response:
        tail = "/" + request.match_info["tail"]
        path = re.sub(r"^/v\d+(?=/)", "", tail)
        body, files = await self._read_body(request)
        req = Req(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            files=files,
            headers=dict(request.headers),
            at=time.monotonic(),
        )
        self.requests.append(req)

        match = None
        for method, pattern, template, handler in self._routes:
            m = pattern.match(path)
            if m and method == request.method:
                match = (template, handler, m.groupdict())
                break
        if match is None:
            req.status = 404
            return self._json_response(404, {"message": "Unknown route", "code": 0})
        req.route = match[0]

        limited = self._take_rate_limit(req)
        if limited is not None:
            req.status = 429
            return self._rate_limited(limited)

        needs_token = self.token is not None and not req.route.startswith(
            ("/webhooks", "/interactions")
        )
        if needs_token and req.headers.get("Authorization") != f"Bot {self.token}":
            req.status = 401
            return self._json_response(401, {"message": "401: Unauthorized", "code": 0})

        failure = self._take_failure(req)
        if failure is not None:
            req.status = failure.status
            return self._json_response(failure.status, failure.body)

        status, out = await match[1](req, **match[2])
        req.status = status
        return self._json_response(status, out, self._bucket_headers(req.route))

    def _take_rate_limit(self, req: Req) -> _RateLimit | None:
        for rule in self._rate_limits:
            if rule.times <= 0:
                continue
            if rule.method not in (None, req.method) or rule.path_contains not in req.path:
                continue
            rule.times -= 1
            return rule
        return None

    def _take_failure(self, req: Req) -> _Failure | None:
        for rule in self._failures:
            if rule.times <= 0:
                continue
            if rule.method not in (None, req.method) or rule.path_contains not in req.path:
                continue
            rule.times -= 1
            return rule
        return None

    def _rate_limited(self, rule: _RateLimit) -> web.Response:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, int(rule.retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
            "X-RateLimit-Bucket": rule.bucket,
            "X-RateLimit-Scope": rule.scope,
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.is_global,
            "code": 0,
        }
        return self._json_response(429, body, headers)

    @staticmethod
    def _bucket_headers(route: str) -> dict[str, str]:
        bucket = hex(zlib.crc32(route.encode()))[2:]
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket,
        }

    # ------------------------------------------------------------------ REST handlers

    async def _get_me(self, req: Req) -> tuple[int, Any]:
        return 200, self.bot_user()

    async def _get_application(self, req: Req) -> tuple[int, Any]:
        return 200, self._application_payload()

    async def _get_gateway(self, req: Req) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _get_gateway_bot(self, req: Req) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_channel(self, req: Req, channel_id: str) -> tuple[int, Any]:
        if channel_id != str(self.channel_id):
            return 404, {"message": "Unknown Channel", "code": 10003}
        return 200, self._channel_payload()

    def _attachments(
        self, message_id: int, body: dict[str, Any], files: list[Upload]
    ) -> list[dict[str, Any]]:
        out = []
        for index, upload in enumerate(files):
            spec: dict[str, Any] = next(
                (
                    a
                    for a in body.get("attachments") or []
                    if str(a.get("id")) == str(index) and "filename" in a
                ),
                {},
            )
            att_id = self.snowflake()
            url = f"http://127.0.0.1:{self._port}/attachments/{self.channel_id}/{att_id}/{upload.filename}"
            out.append(
                {
                    "id": str(att_id),
                    "filename": spec.get("filename", upload.filename),
                    "description": spec.get("description"),
                    "content_type": upload.content_type,
                    "size": len(upload.data),
                    "url": url,
                    "proxy_url": url,
                    "ephemeral": False,
                }
            )
        self.uploads.setdefault(message_id, []).extend(files)
        return out

    def _new_message(
        self, channel_id: str, body: dict[str, Any], files: list[Upload], **extra: Any
    ) -> dict[str, Any]:
        message_id = self.snowflake()
        embeds = [{"type": "rich", **e} for e in body.get("embeds") or []]
        message: dict[str, Any] = {
            "id": str(message_id),
            "type": 19 if body.get("message_reference") else 0,
            "channel_id": channel_id,
            "author": self.bot_user(),
            "content": body.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments(message_id, body, files),
            "embeds": embeds,
            "components": body.get("components") or [],
            "pinned": False,
            "flags": int(body.get("flags") or 0),
            **extra,
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is not None:
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": referenced["channel_id"],
                    "guild_id": str(self.guild_id),
                }
                message["referenced_message"] = {
                    k: v for k, v in referenced.items() if k != "referenced_message"
                }
            else:  # fail_if_not_exists was false: a plain message
                message["type"] = 0
        self.messages[message_id] = message
        return message

    def _apply_edit(
        self, message: dict[str, Any], body: dict[str, Any], files: list[Upload]
    ) -> None:
        for key in ("content", "components", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        if "embeds" in body:
            message["embeds"] = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "attachments" in body:
            keep = {str(a["id"]) for a in body["attachments"] or [] if "filename" not in a}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
        if files:
            message["attachments"] += self._attachments(int(message["id"]), body, files)
        message["edited_timestamp"] = _now_iso()

    async def _create_message(self, req: Req, channel_id: str) -> tuple[int, Any]:
        if channel_id != str(self.channel_id):
            return 404, {"message": "Unknown Channel", "code": 10003}
        body = req.json if isinstance(req.json, dict) else {}
        if not (body.get("content") or body.get("embeds") or req.files or body.get("components")):
            return 400, {"message": "Cannot send an empty message", "code": 50006}
        problem = self._message_problem(channel_id, body)
        if problem is not None:
            return problem
        return 200, self._new_message(channel_id, body, req.files)

    def _message_problem(self, channel_id: str, body: dict[str, Any]) -> tuple[int, Any] | None:
        """What Discord refuses in a new message's body (content, mentions, reference)."""
        content = body.get("content")
        if isinstance(content, str) and len(content) > MAX_CONTENT:
            return _invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        allowed = body.get("allowed_mentions")
        if isinstance(allowed, dict):
            parse = allowed.get("parse") or []
            for kind in ("users", "roles"):
                ids = allowed.get(kind)
                if ids is None:
                    continue
                if kind in parse:
                    return _invalid_form(
                        "allowed_mentions",
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                    )
                if len(ids) > MAX_MENTION_IDS:
                    return _invalid_form(
                        "allowed_mentions",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {MAX_MENTION_IDS} or fewer in length.",
                    )
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            target = str(reference["message_id"])
            missing = self._find_message(str(reference.get("channel_id") or channel_id), target)
            if missing is None and reference.get("fail_if_not_exists", True) is not False:
                return _invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
        return None

    async def _list_messages(self, req: Req, channel_id: str) -> tuple[int, Any]:
        """A page of the channel's messages, newest first, as Discord pages them."""
        if channel_id != str(self.channel_id):
            return 404, {"message": "Unknown Channel", "code": 10003}
        bounds: dict[str, int] = {}
        for key in ("limit", "before", "after", "around"):
            raw = req.query.get(key)
            if raw is None:
                continue
            if not raw.isdigit():
                return _invalid_form(key, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.')
            bounds[key] = int(raw)
        limit = bounds.pop("limit", 50)
        if not 1 <= limit <= 100:
            return _invalid_form(
                "limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100."
            )
        if len(bounds) > 1:
            return _invalid_form(
                "before", "BASE_TYPE_BAD_USAGE", "before, after and around are exclusive."
            )
        if "around" in bounds:
            return 501, {"message": "around is not faked", "code": 0}
        shown = sorted(
            (m for m in self.messages_in(int(channel_id)) if not int(m["flags"]) & EPHEMERAL),
            key=lambda m: int(m["id"]),
        )
        if "after" in bounds:
            page = [m for m in shown if int(m["id"]) > bounds["after"]][:limit]
        elif "before" in bounds:
            page = [m for m in shown if int(m["id"]) < bounds["before"]][-limit:]
        else:
            page = shown[-limit:]
        return 200, page[::-1]

    async def _get_roles(self, req: Req, guild_id: str) -> tuple[int, Any]:
        if guild_id != str(self.guild_id):
            return 404, {"message": "Unknown Guild", "code": 10004}
        return 200, self._role_payloads()

    def _find_message(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        message = self.messages.get(int(message_id)) if message_id.isdigit() else None
        if message is None or message["channel_id"] != channel_id:
            return None
        return message

    async def _get_message(self, req: Req, channel_id: str, message_id: str) -> tuple[int, Any]:
        message = self._find_message(channel_id, message_id)
        if message is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        return 200, message

    async def _edit_message(self, req: Req, channel_id: str, message_id: str) -> tuple[int, Any]:
        message = self._find_message(channel_id, message_id)
        if message is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        self._apply_edit(message, req.json if isinstance(req.json, dict) else {}, req.files)
        return 200, message

    async def _callback(self, req: Req, interaction_id: str, token: str) -> tuple[int, Any]:
        now = time.monotonic()
        pending = self._interactions.get(int(interaction_id)) if interaction_id.isdigit() else None
        if (
            pending is None
            or pending.payload["token"] != token
            or now - pending.sent_at > self.interaction_ttl
        ):
            return 404, {"message": "Unknown interaction", "code": 10062}
        if pending.acknowledged:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        pending.acknowledged = True
        body = req.json if isinstance(req.json, dict) else {}
        kind = int(body.get("type", 0))
        data = body.get("data")
        assert self._callback_arrived is not None
        async with self._callback_arrived:
            self.callbacks.append(
                Callback(
                    interaction_id=int(interaction_id),
                    token=token,
                    type=kind,
                    data=data,
                    files=req.files,
                    received_at=now,
                    latency=now - pending.sent_at,
                )
            )
            self._callback_arrived.notify_all()

        payload = pending.payload
        source = payload.get("message") or {}
        resource: dict[str, Any] = {"type": kind}
        interaction: dict[str, Any] = {"id": interaction_id, "type": payload["type"]}
        extra = {
            "application_id": str(self.application_id),
            "webhook_id": str(self.application_id),
            "interaction_metadata": {
                "id": interaction_id,
                "type": payload["type"],
                "user": payload.get("member", {}).get("user") or payload.get("user"),
                "authorizing_integration_owners": {},
            },
        }
        if kind in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            flags = int((data or {}).get("flags") or 0)
            if kind == CALLBACK_DEFERRED_MESSAGE:
                flags |= 1 << 7  # LOADING
            message = self._new_message(
                payload["channel_id"], {**(data or {}), "flags": flags}, req.files, **extra
            )
            pending.original_message_id = int(message["id"])
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=kind == CALLBACK_DEFERRED_MESSAGE,
                response_message_ephemeral=bool(flags & (1 << 6)),
            )
            if kind == CALLBACK_MESSAGE:
                resource["message"] = message
        elif kind in (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE_MESSAGE) and source:
            pending.original_message_id = int(source["id"])
            interaction["response_message_id"] = source["id"]
            if kind == CALLBACK_UPDATE_MESSAGE:
                stored = self.messages.get(int(source["id"]))
                if stored is not None:
                    self._apply_edit(stored, data or {}, req.files)
                    resource["message"] = stored
        return 200, {"interaction": interaction, "resource": resource}

    def _interaction_by_token(self, app_id: str, token: str) -> _Interaction | None:
        if app_id != str(self.application_id):
            return None
        return next((i for i in self._interactions.values() if i.payload["token"] == token), None)

    async def _followup(self, req: Req, app_id: str, token: str) -> tuple[int, Any]:
        pending = self._interaction_by_token(app_id, token)
        if pending is None or not pending.acknowledged:
            return 404, {"message": "Unknown Webhook", "code": 10015}
        body = req.json if isinstance(req.json, dict) else {}
        message = self._new_message(
            pending.payload["channel_id"],
            body,
            req.files,
            webhook_id=str(self.application_id),
            application_id=str(self.application_id),
        )
        if req.query.get("wait", "").lower() not in ("true", "1"):
            return 204, None
        return 200, message

    async def _edit_webhook(
        self, req: Req, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        pending = self._interaction_by_token(app_id, token)
        if pending is None:
            return 404, {"message": "Unknown Webhook", "code": 10015}
        if message_id == "@original":
            if pending.original_message_id is None:
                return 404, {"message": "Unknown Message", "code": 10008}
            target = self.messages.get(pending.original_message_id)
        else:
            target = self.messages.get(int(message_id)) if message_id.isdigit() else None
        if target is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        target["flags"] = int(target.get("flags") or 0) & ~(1 << 7)
        self._apply_edit(target, req.json if isinstance(req.json, dict) else {}, req.files)
        return 200, target

    async def _put_commands(
        self, req: Req, app_id: str, guild_id: str | None = None
    ) -> tuple[int, Any]:
        if app_id != str(self.application_id):
            return 403, {"message": "Missing Access", "code": 50001}
        if guild_id is not None and guild_id != str(self.guild_id):
            return 404, {"message": "Unknown Guild", "code": 10004}
        out = []
        for command in req.json if isinstance(req.json, list) else []:
            out.append(
                {
                    "type": 1,
                    "description": "",
                    "options": [],
                    "default_member_permissions": None,
                    "nsfw": False,
                    **command,
                    "id": str(self.snowflake()),
                    "application_id": str(self.application_id),
                    "version": str(self.snowflake()),
                    **({"guild_id": guild_id} if guild_id else {}),
                }
            )
        self.commands[int(guild_id) if guild_id else None] = out
        return 200, out
