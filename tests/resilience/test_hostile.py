"""Hostile input (issue 11): each is refused cleanly (a 4xx, never a 500), the refusal is
logged, and nothing is stored or changed.

Covered: SSRF through callback URLs and webhook targets (literal addresses at submit and
at start, host names after resolution at send time, DNS answers that change after the
check); a 50 MB body; deeply nested JSON and invalid UTF-8 on every JSON endpoint;
another integrator's API key; forged and replayed Slack signatures; clicks on unknown
items in Slack and Discord; reviewers deciding on routes that are not theirs in Slack,
Discord, the web console and the CLI; and error messages that must not echo secrets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from adapters.discord.bot import DiscordSurface
from adapters.targets.webhook import WebhookTarget
from bot.app import System, build, create_app
from bot.auth import Integrator
from bot.card import ReviewCard
from bot.cli import main as cli_main
from bot.clock import FrozenClock
from bot.errors import ConfigError, ReleaseError
from bot.netguard import address_class, literal_address
from bot.ports import Actor, DeliveryRequest
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
from tests import secrets_scan
from tests.conftest import ROUTES_YAML
from tests.discord.conftest import DiscordWorld
from tests.discord.conftest import simcord_bot as simcord_bot  # fixture
from tests.discord.conftest import world as discord_world  # fixture
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface
from tests.process import free_port
from tests.slack.conftest import CHANNEL, SlackWorld, button_click, eventually
from tests.slack.conftest import world as slack_world  # fixture

__all__ = ["discord_world", "simcord_bot", "slack_world"]  # fixtures, used by name

UNKNOWN_ITEM = "itm_" + "0" * 26
DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
PRIVATE_CALLBACKS = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.7/hook", "private"),
    ("http://192.168.1.20/hook", "private"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 spelt as one number
]
GUARDED = {  # lists private hosts, but does not allow private addresses
    "surfaces": [{"type": "web"}],
    "callback_hosts": [
        *("127.0.0.1", "169.254.169.254", "10.0.0.7", "192.168.1.20", "::1", "2130706433"),
        "hooks.example.com",
    ],
}
MESSAGE = {"route": "support", "kind": "message", "title": "Hello", "content": {"text": "Hi"}}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # refusals do not depend on the database
    return sqlite_url


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes({"routes": {**ROUTES_YAML["routes"], "guarded": GUARDED}})


@pytest.fixture
async def api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


@pytest.fixture
async def keys(system: System) -> dict[str, str]:
    return {
        name: secrets_scan.register((await system.keys.create(name=name)).api_key)
        for name in ("alice", "bob")
    }


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> bool:
    """Whether one record holds every part."""
    return any(all(p in r.getMessage() for p in parts) for r in caplog.records)


async def stored(api: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.get("/v1/items", headers=bearer(key))).json()["items"]
    return items


# -- SSRF ----------------------------------------------------------------------------------


async def test_callback_urls_on_private_addresses_are_refused_at_submit(
    api: httpx.AsyncClient, keys: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    for url, kind in PRIVATE_CALLBACKS:
        answer = await api.post(
            "/v1/items",
            json={**MESSAGE, "route": "guarded", "callback_url": url},
            headers=bearer(keys["alice"]),
        )
        assert answer.status_code == 422, (url, answer.text)
        message = answer.json()["error"]["message"]
        assert message.startswith("callback_url: ") and f"is a {kind} address" in message
        assert "allow_private_callbacks" in message
        assert logged(logs, "refused POST /v1/items: 422", "callback_url", kind)
    assert await stored(api, keys["alice"]) == []
    # a host name passes here: it is checked on what it resolves to, when sending
    named = {**MESSAGE, "route": "guarded", "callback_url": "https://hooks.example.com/x"}
    answer = await api.post("/v1/items", json=named, headers=bearer(keys["alice"]))
    assert answer.status_code == 201, answer.text


async def test_private_callbacks_are_allowed_when_the_operator_says_so(
    db_url: str, routes: RouteTable
) -> None:
    system = build(
        load_settings({"SIGNOFF_DATABASE_URL": db_url, "SIGNOFF_ALLOW_PRIVATE_CALLBACKS": "1"}),
        routes=routes,
        surfaces={"web": RecordingSurface()},
    )
    await upgrade(system.engine)
    try:
        integrator = await _integrator(system)
        for url, _ in PRIVATE_CALLBACKS:
            data = ItemCreate(**{**MESSAGE, "route": "guarded", "callback_url": url})
            assert (await system.service.submit(integrator=integrator, data=data)).created
    finally:
        await system.close()


def test_a_webhook_target_on_a_private_address_fails_at_start(db_url: str) -> None:
    target = {"type": "webhook", "url": "http://169.254.169.254/latest"}
    doc = {"routes": {"meta": {"target": target, "callback_hosts": ["169.254.169.254"]}}}
    settings = load_settings({"SIGNOFF_DATABASE_URL": db_url})
    with pytest.raises(ConfigError) as refused:
        build(settings, routes=parse_routes(doc))
    assert refused.value.message.startswith(
        "routes.meta.target.url: 169.254.169.254 is a link-local address"
    )
    doc["routes"]["meta"]["allow_private_callbacks"] = True
    asyncio.run(build(settings, routes=parse_routes(doc)).close())


def test_address_classes() -> None:
    cases = {
        "127.0.0.1": "loopback",
        "::1": "loopback",
        "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
        "169.254.169.254": "link-local",
        "fe80::1": "link-local",
        "10.1.2.3": "private",
        "172.16.0.1": "private",
        "192.168.0.1": "private",
        "fd00::1": "private",
        "0.0.0.0": "unspecified",
        "::": "unspecified",
        "224.0.0.1": "multicast",
        "ff02::1": "multicast",
        "100.64.0.1": "reserved",  # carrier-grade NAT
        "240.0.0.1": "reserved",
        "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
        "2002:a00:1::1": "private",  # 6to4 of 10.0.0.1
        "8.8.8.8": None,
        "2606:4700:4700::1111": None,
    }
    for text, kind in cases.items():
        assert address_class(ipaddress.ip_address(text)) == kind, text
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("[::1]") == ipaddress.ip_address("::1")
    assert literal_address("hooks.example.com") is None
    assert literal_address("deadbeef") is None


async def _integrator(system: System, name: str = "agent") -> Integrator:
    key = await system.keys.create(name=name)
    secrets_scan.register(key.api_key)
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    return found


@pytest.mark.parametrize("allowed", [False, True], ids=["default", "allowed"])
async def test_host_names_are_checked_on_their_addresses_when_sending(
    tmp_path: Path, logs: pytest.LogCaptureFixture, allowed: bool
) -> None:
    """``localhost`` is a host name (it passes submit and start) that resolves to a
    loopback address: refused when sending, unless allowed; a refusal is not retried."""
    receiver = await Receiver().start()
    port = receiver.url.rsplit(":", 1)[1]
    route = {
        "surfaces": [{"type": "web"}],
        "target": {"type": "webhook", "url": f"http://localhost:{port}/release"},
        "callback_hosts": ["localhost"],
        "allow_private_callbacks": allowed,
    }
    clock = FrozenClock()
    system = build(
        load_settings({"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db"}),
        clock=clock,
        routes=parse_routes({"routes": {"hooks": route}}),
        surfaces={"web": RecordingSurface()},
    )
    await upgrade(system.engine)
    try:
        integrator = await _integrator(system)
        data = ItemCreate(
            **{**MESSAGE, "route": "hooks", "callback_url": f"http://localhost:{port}/callback"}
        )
        item = (await system.service.submit(integrator=integrator, data=data)).item
        lead = Actor(surface="web", user_id="lead", name="lead")
        await system.service.decide(item_id=item.id, action="approve", actor=lead)
        assert await system.worker.run_once() == 2
        clock.advance(3600)
        await system.worker.run_once()  # nothing is due again: refusals are final
        after = await system.reader.get(item_id=item.id)
        if allowed:
            assert sorted(r.path for r in receiver.received) == ["/callback", "/release"]
            assert after.release_state == "released"
            return
        assert receiver.received == []
        assert after.release_state == "failed" and after.release_error is not None
        assert "refused: localhost (" in after.release_error
        assert "is a loopback address" in after.release_error
        for purpose in ("release", "callback"):
            assert logged(logs, f"{purpose} {item.id} failed after 1 attempts", "refused")
    finally:
        await system.close()
        await receiver.stop()


def _webhook_request(url: str, route: str = "hooks") -> DeliveryRequest:
    return DeliveryRequest(
        url=url,
        body=b"{}",
        idempotency_key="itm_1:callback",
        signing_secret="whsec_" + "x" * 43,
        event="item.decided",
        attempt=1,
        item={"route": route},
    )


async def test_the_request_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is resolved once, the answer checked, and the connection
    made to that very address (a second lookup could answer 127.0.0.1)."""
    answers = [["8.8.8.8"], ["127.0.0.1"]]
    lookups: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers.pop(0)]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        target = WebhookTarget(client=client)
        await target.deliver(request=_webhook_request("https://hooks.example.com:8443/in?x=1"))
    [request] = seen
    assert lookups == ["hooks.example.com"]
    assert str(request.url) == "https://8.8.8.8:8443/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_an_answer_mixing_public_and_private_addresses_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    async with httpx.AsyncClient(transport=httpx.MockTransport(httpx.Response)) as client:
        target = WebhookTarget(client=client)
        with pytest.raises(ReleaseError) as refused:
            await target.deliver(request=_webhook_request("https://u:hunter2@hooks.example.com/"))
    assert not refused.value.retryable
    assert "hooks.example.com (10.0.0.1) is a private address" in refused.value.message
    assert "hunter2" not in refused.value.message and "u:***@" in refused.value.message


# -- bodies: too large, too deep, not UTF-8 ------------------------------------------------


@pytest.fixture
async def served(system: System) -> AsyncIterator[str]:
    """The app on a real socket (uvicorn in this event loop)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(system, migrate=False, run_worker=False, run_scheduler=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)  # waiting for the socket to listen, not a timer under test
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _upload(address: str, *, key: str, declared: bool, total: int) -> tuple[int, int]:
    """POST ``total`` bytes to /v1/items in 64 KiB writes (one buffer, sent over and
    over), reading the answer while sending; the status and how much was sent."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    length = f"Content-Length: {total}" if declared else "Transfer-Encoding: chunked"
    writer.write(
        f"POST /v1/items HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{length}\r\n\r\n".encode()
    )
    chunk = b" " * 65536
    framed = chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk)
    status_line = asyncio.create_task(reader.readline())
    sent = 0
    try:
        while sent < total and not status_line.done():
            writer.write(framed)
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass  # the server stopped reading after its answer
    line = await asyncio.wait_for(status_line, timeout=10)
    writer.close()
    return int(line.split()[1]), sent


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_50_mb_body_is_refused_quickly_and_the_server_lives_on(
    served: str,
    keys: dict[str, str],
    api: httpx.AsyncClient,
    logs: pytest.LogCaptureFixture,
    declared: bool,
) -> None:
    started = time.monotonic()
    status, sent = await _upload(served, key=keys["alice"], declared=declared, total=50 << 20)
    took = time.monotonic() - started
    assert status == 413 and took < 5, (status, took)
    assert sent < 8 << 20  # refused near the 1 MiB limit, not after reading 50 MB
    assert logged(logs, "refused POST /v1/items: 413", "over the limit")
    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        assert (await client.get("/healthz")).status_code == 200
        created = await client.post("/v1/items", json=MESSAGE, headers=bearer(keys["alice"]))
        assert created.status_code == 201
    assert len(await stored(api, keys["alice"])) == 1  # only the one after


HOSTILE_BODIES = {
    "nested arrays": b"[" * 100_000,
    "nested objects": b'{"a":' * 100_000,
    "invalid UTF-8": b'{"route":"support","kind":"message","title":"\xff\xfe","content":{}}',
    "lone surrogate": b'{"route":"support","kind":"message","title":"\\ud800","content":{}}',
}


async def test_deep_json_and_invalid_utf8_are_refused_on_every_json_endpoint(
    api: httpx.AsyncClient, keys: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    schema = (await api.get("/openapi.json")).json()
    posts = [
        path.replace("{", "").replace("}", "")
        for path, operations in schema["paths"].items()
        if "post" in operations
    ]
    assert "/v1/items" in posts
    for path in posts:
        for name, body in HOSTILE_BODIES.items():
            started = time.monotonic()
            answer = await api.post(
                path,
                content=body,
                headers=bearer(keys["alice"], **{"Content-Type": "application/json"}),
            )
            took = time.monotonic() - started
            assert 400 <= answer.status_code < 500 and took < 2, (path, name, answer.text)
            assert logged(logs, f"refused POST {path}: {answer.status_code}")
    assert await stored(api, keys["alice"]) == []


async def test_invalid_utf8_in_headers_is_refused(
    api: httpx.AsyncClient, keys: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    garbled = "caf\u00c3\u00a9".encode("latin-1")  # "café" in UTF-8, sent as raw bytes
    answer = await api.post(
        "/v1/items",
        json=MESSAGE,
        headers={"Authorization": f"Bearer {keys['alice']}", "Idempotency-Key": garbled},
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["message"].startswith("Idempotency-Key: ")
    bad_key = await api.get("/v1/items", headers={"Authorization": b"Bearer \xff\xfe\xfd"})
    assert bad_key.status_code == 401
    assert logged(logs, "refused POST /v1/items: 422 Idempotency-Key")
    assert logged(logs, "refused GET /v1/items: 401 unknown API key")
    assert await stored(api, keys["alice"]) == []


# -- another integrator's key --------------------------------------------------------------


async def test_another_integrators_key_finds_nothing(
    api: httpx.AsyncClient, keys: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    item = (await api.post("/v1/items", json=MESSAGE, headers=bearer(keys["alice"]))).json()
    before = (await api.get(f"/v1/items/{item['id']}", headers=bearer(keys["alice"]))).json()
    bob = bearer(keys["bob"])
    for url in (f"/v1/items/{item['id']}", f"/v1/items/{item['id']}?wait=30"):
        started = time.monotonic()
        answer = await api.get(url, headers=bob)
        assert answer.status_code == 404 and time.monotonic() - started < 2
        assert answer.json()["error"] == {"code": "not_found", "message": f"no item {item['id']}"}
    assert (await api.get("/v1/items", headers=bob)).json()["items"] == []
    exported = await api.get("/v1/exports/sft", headers=bob)
    assert exported.status_code == 200 and item["id"] not in exported.text
    assert logged(logs, f"refused GET /v1/items/{item['id']}: 404 no item")
    after = (await api.get(f"/v1/items/{item['id']}", headers=bearer(keys["alice"]))).json()
    assert after == before


# -- Slack ---------------------------------------------------------------------------------


async def _slack_item(world: SlackWorld) -> tuple[str, str]:
    data = ItemCreate(
        route="support",
        kind="email",
        title="Refund",
        content={"to": ["jane@example.com"], "subject": "Refund", "body": "Hi"},
        confidence=0.5,
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    [message] = world.slack.messages[CHANNEL]
    return item.id, message["ts"]


@pytest.mark.parametrize("forgery", ["wrong secret", "replayed"])
async def test_forged_and_replayed_slack_signatures_are_refused(
    slack_world: SlackWorld, logs: pytest.LogCaptureFixture, forgery: str
) -> None:
    world = slack_world
    item_id, ts = await _slack_item(world)
    calls = len(world.slack.calls)
    click = button_click(item_id=item_id, verb="approve", user="U0LEAD", ts=ts, trigger_id="1.2.3")
    if forgery == "wrong secret":
        answer = await world.click(click, secret="not-the-signing-secret")
    else:  # signed right, but 10 minutes ago: a captured request sent again
        answer = await world.click(click, age=600)
    assert answer.status_code == 401
    assert logged(logs, "Invalid request signature")
    assert logged(logs, "refused POST /slack/events: 401")
    assert (await world.system.reader.get(item_id=item_id)).state == "pending"
    assert len(world.slack.calls) == calls  # nothing was posted, opened or updated


async def test_slack_body_that_is_not_utf8_is_refused(
    slack_world: SlackWorld, logs: pytest.LogCaptureFixture
) -> None:
    """bolt parses a body before it checks its signature: neither a body that is not
    UTF-8 nor a payload that is not JSON may turn into a 500, signed or not."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body in (b"payload=%7B\xff\xfe", b"payload=%7Bnot-json", b"\xff\xfe"):
        answer = await slack_world.http.post("/slack/events", content=body, headers=form)
        assert answer.status_code == 400, (body, answer.text)
    signed = await slack_world.signed("payload=%7Bnot-json")
    assert signed.status_code == 400
    assert logged(logs, "refused POST /slack/events: 400 not a Slack request")


async def test_slack_clicks_on_unknown_items_and_other_routes_are_refused(
    slack_world: SlackWorld, logs: pytest.LogCaptureFixture
) -> None:
    world = slack_world
    item_id, ts = await _slack_item(world)
    for target, user in ((UNKNOWN_ITEM, "U0LEAD"), (item_id, "U0INTERN")):
        click = button_click(item_id=target, verb="approve", user=user, ts=ts, trigger_id="1.2.3")
        assert (await world.click(click)).status_code == 200  # acked; told privately
    told = await eventually(lambda: len(world.slack.calls_to("chat.postEphemeral")) == 2)
    assert told
    texts = [c.params["text"] for c in world.slack.calls_to("chat.postEphemeral")]
    assert any(f"No item {UNKNOWN_ITEM}" in t for t in texts), texts
    assert any("not a reviewer of route 'support'" in t for t in texts), texts
    assert logged(logs, "slack: approve of", UNKNOWN_ITEM, "refused")
    assert logged(logs, "U0INTERN may not approve", item_id)
    assert (await world.system.reader.get(item_id=item_id)).state == "pending"


# -- Discord -------------------------------------------------------------------------------


async def test_discord_clicks_on_unknown_items_and_other_routes_are_refused(
    discord_world: DiscordWorld, logs: pytest.LogCaptureFixture
) -> None:
    world = discord_world
    data = ItemCreate(
        route="code",
        kind="code_change",
        title="Bump a",
        confidence=0.5,
        content={"repository": "o/r", "title": "Bump a", "diff": DIFF},
    )
    item = (await world.system.service.submit(integrator=world.integrator, data=data)).item
    await world.env.settle()
    mine = world.channel.last_message
    # a card for an item this signoff does not know (e.g. left from a restored backup)
    stray = ReviewCard(
        item_id=UNKNOWN_ITEM, kind="message", title="Gone", route="code", confidence=None,
        requested_by=None, due=None, body="gone",
    )  # fmt: skip
    surface = DiscordSurface(client=world.bot, web_url="http://127.0.0.1:8000")
    await surface.post(card=stray, channel=str(world.channel.id))
    await world.env.settle()
    unknown = await world.lead.click(
        world.channel.last_message, custom_id=f"signoff:approve:{UNKNOWN_ITEM}"
    )
    assert unknown.ephemeral and f"No item {UNKNOWN_ITEM}" in unknown.response.content
    other = await world.intern.click(mine, custom_id=f"signoff:approve:{item.id}")
    assert other.ephemeral and "not a reviewer of route 'code'" in other.response.content
    assert logged(logs, "discord: lead", f"may not approve {UNKNOWN_ITEM}", "no item")
    assert logged(logs, "discord: intern", f"may not approve {item.id}", "not a reviewer")
    assert (await world.system.reader.get(item_id=item.id)).state == "pending"


# -- web console and CLI -------------------------------------------------------------------


async def test_a_web_reviewer_cannot_decide_on_a_route_not_theirs(
    system: System,
    api: httpx.AsyncClient,
    integrator: Integrator,
    logs: pytest.LogCaptureFixture,
) -> None:
    data = ItemCreate(**{**MESSAGE, "route": "strict"})
    item = (await system.service.submit(integrator=integrator, data=data)).item
    # "intern" may see route strict but is not among its reviewers; "outsider" may not
    for name, routes in (("intern", ["strict"]), ("outsider", ["support"])):
        link = await system.web.auth.invite(name=name, routes=routes)
        api.cookies.clear()
        signed_in = await api.post("/signin/" + link.rsplit("/", 1)[1])
        assert signed_in.status_code == 303
        page = (await api.get("/")).text
        csrf = page.split('data-csrf="', 1)[1].split('"', 1)[0]
        for action in ("approve", "reject"):
            answer = await api.post(
                f"/items/{item.id}/decide", data={"csrf": csrf, "action": action}
            )
            assert answer.status_code == 404, answer.text
        assert (await api.get(f"/items/{item.id}")).status_code == 404
        garbled = await api.post(
            f"/items/{item.id}/decide",
            content=b"csrf=" + csrf.encode() + b"&action=approve\xff\xfe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert garbled.status_code in (400, 404, 422), garbled.status_code
    assert logged(logs, f"refused POST /items/{item.id}/decide: 404")
    bogus = "x" * 43  # a sign-in token that was never issued: refused, and not logged
    assert (await api.post(f"/signin/{bogus}")).status_code == 400
    assert logged(logs, "refused POST /signin/{token}: 400")
    assert not any(bogus in r.getMessage() for r in logs.records if r.name != "httpx")
    # uvicorn's access log shows the path of every request: not a sign-in token
    access = logging.getLogger("uvicorn.access")  # may not propagate (uvicorn's config)
    level = access.level
    access.addHandler(logs.handler)
    try:
        access.setLevel(logging.INFO)
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/signin/{bogus}", "1.1", 200)
    finally:
        access.removeHandler(logs.handler)
        access.setLevel(level)
    assert logged(logs, '"GET /signin/{token} HTTP/1.1" 200')
    assert not any(bogus in r.getMessage() for r in logs.records if r.name != "httpx")
    after = await system.reader.get(item_id=item.id)
    assert after.state == "pending" and after.decisions == []


def _cli(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Run the ``signoff`` entry point in this process: its exit code and stderr."""
    monkeypatch.setattr("sys.argv", ["signoff", *args])
    with pytest.raises(SystemExit) as ended:
        cli_main()
    return int(ended.value.code or 0), capsys.readouterr().err


def test_the_cli_refuses_a_reviewer_not_on_the_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {"routes": {"strict": {"reviewers": {"web": ["lead"]}}}}
    (tmp_path / "signoff.yaml").write_text(yaml.safe_dump(doc))
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db",
        "SIGNOFF_CONFIG": str(tmp_path / "signoff.yaml"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def submit() -> str:
        system = build(load_settings(env), routes=parse_routes(doc))
        await upgrade(system.engine)
        try:
            data = ItemCreate(**{**MESSAGE, "route": "strict"})
            integrator = await _integrator(system)
            return (await system.service.submit(integrator=integrator, data=data)).item.id

        finally:
            await system.close()

    async def state(item_id: str) -> str:
        system = build(load_settings(env), routes=parse_routes(doc))
        try:
            return (await system.reader.get(item_id=item_id)).state
        finally:
            await system.close()

    item_id = asyncio.run(submit())
    code, err = _cli(["decide", item_id, "approve", "--as", "intern"], monkeypatch, capsys)
    assert code == 2 and "not a reviewer of route 'strict'" in err, err
    assert secrets_scan.scan_text(err, where="signoff decide (stderr)") == []
    assert asyncio.run(state(item_id)) == "pending"


# -- secrets in error messages -------------------------------------------------------------


def test_settings_errors_do_not_echo_secrets(tmp_path: Path) -> None:
    password, token = "hunter2-smtp-pass", "xoxb-123-live-token"
    db = f"sqlite+aiosqlite:///{tmp_path}/s.db"
    bad_smtp = {
        "SIGNOFF_DATABASE_URL": db,
        "SIGNOFF_SMTP_URL": f"smtp://mailer:{password}@mail.example.com:99999",
    }
    with pytest.raises(ConfigError) as smtp:
        build(load_settings(bad_smtp))
    assert "SIGNOFF_SMTP_URL" in smtp.value.message and password not in smtp.value.message
    with pytest.raises(ConfigError) as unknown:  # a misspelt name: the value is not shown
        load_settings({"SIGNOFF_SLACK_BOT_TOKN": token, "SIGNOFF_PORT": "80"})
    assert "SIGNOFF_SLACK_BOT_TOKN" in unknown.value.message
    assert token not in unknown.value.message
    with pytest.raises(ConfigError) as invalid:
        load_settings({"SIGNOFF_SLACK_BOT_TOKEN": token, "SIGNOFF_PORT": token})
    assert "SIGNOFF_PORT" in invalid.value.message and token not in invalid.value.message


def test_database_errors_do_not_echo_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "pg-pass-hunter2"
    # no such driver: refused as the engine is made
    nodriver = f"postgresql+nodriver://signoff:{password}@127.0.0.1/signoff"
    with pytest.raises(Exception) as no_driver:
        build(load_settings({"SIGNOFF_DATABASE_URL": nodriver}))
    assert password not in "".join(traceback.format_exception(no_driver.value))
    # nothing listens: `signoff db upgrade` fails on connecting, in one line that names
    # the setting to check and must not show the URL's password
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"postgresql+asyncpg://u:{password}@127.0.0.1:1/d")
    monkeypatch.setattr("sys.argv", ["signoff", "db", "upgrade"])
    with pytest.raises(SystemExit) as refused:
        cli_main()
    shown = capsys.readouterr().err
    assert refused.value.code == 1 and "Connect call failed" in shown
    assert "SIGNOFF_DATABASE_URL" in shown and password not in shown


async def test_an_unknown_api_key_is_not_echoed(
    api: httpx.AsyncClient, logs: pytest.LogCaptureFixture
) -> None:
    forged = secrets_scan.register("sk_" + "A" * 43)
    answer = await api.get("/v1/items", headers=bearer(forged))
    assert answer.status_code == 401 and forged not in answer.text
    assert logged(logs, "refused GET /v1/items: 401 unknown API key")
    assert not any(forged in r.getMessage() for r in logs.records)


def test_the_secrets_scan_catches_a_leak() -> None:
    """The scanner itself: a key-shaped value or a registered secret in a log record is a
    leak (dropped again here: this one is on purpose)."""
    before = len(secrets_scan.leaks())
    secret = secrets_scan.register("a-registered-secret-value")
    log = logging.getLogger("signoff.test")
    log.warning("leaking %s", secret)
    log.info("leaking %s", "whsec_" + "b" * 43)
    logging.getLogger("some.library").error("boom", exc_info=ValueError("sk_" + "c" * 43))
    found = secrets_scan.leaks()[before:]
    secrets_scan.forget(before)
    assert [leak.where for leak in found] == ["signoff.test", "signoff.test", "some.library"]
    assert found[0].secret == secret and found[2].secret.startswith("sk_ccc")
    assert secrets_scan.scan_text("ok\nAPI key (integrator 'demo'): sk_" + "d" * 43, where="x",
                                  allow_lines=("API key (integrator",)) == []  # fmt: skip
    assert json.dumps(secrets_scan.find("xoxb-abc token")) == '["xoxb-abc"]'
    secrets_scan.forget(before)
