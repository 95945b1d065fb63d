"""Release chains, a target that is down for a while, and retrying a failed release
(from the core and from the command line), against real receivers on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.web.render import history
from bot.app import System, build
from bot.auth import Integrator, NewKey
from bot.clock import FrozenClock
from bot.errors import ConfigError, Conflict, NotAllowed
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage import outbox as outbox_store
from storage.migrate import upgrade
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface
from tests.process import free_port, run, signoff_env

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
ANN = Actor(surface="web", user_id="ann", name="ann")


@pytest.fixture
async def first() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def second() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def late_port() -> int:
    return free_port()


@pytest.fixture
def routes(first: Receiver, second: Receiver, late_port: int) -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "chain": {
                    "targets": [
                        {"type": "webhook", "url": f"{first.url}/send"},
                        {"type": "webhook", "url": f"{second.url}/notify"},
                    ],
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                },
                "flaky": {
                    "target": {"type": "webhook", "url": f"http://127.0.0.1:{late_port}/in"},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                    "reviewers": {"web": ["ann"]},
                },
            }
        }
    )


@pytest.fixture
def surface() -> RecordingSurface:
    return RecordingSurface(name="web")


@pytest.fixture
async def system(
    sqlite_url: str, routes: RouteTable, clock: FrozenClock, surface: RecordingSurface
) -> AsyncIterator[System]:
    sys_ = build(
        load_settings({"SIGNOFF_DATABASE_URL": sqlite_url, "SIGNOFF_RELEASE_MAX_ATTEMPTS": "4"}),
        clock=clock,
        routes=routes,
        surfaces={"web": surface},
    )
    await upgrade(sys_.engine)
    try:
        yield sys_
    finally:
        await sys_.close()


@pytest.fixture
async def key(system: System) -> NewKey:
    return await system.keys.create(name="agent")


async def approve(system: System, key: NewKey, route: str) -> str:
    integrator = await system.keys.authenticate(key.api_key)
    assert isinstance(integrator, Integrator)
    data = ItemCreate(route=route, kind="email", title="Refund", content=EMAIL)
    item = (await system.service.submit(integrator=integrator, data=data)).item
    await system.service.decide(item_id=item.id, action="approve", actor=ANN)
    return item.id


async def drain(system: System, clock: FrozenClock, *, passes: int) -> None:
    for _ in range(passes):
        await system.worker.run_once()
        clock.advance(timedelta(hours=2))


async def test_a_chain_releases_each_target_in_order_with_its_own_key(
    system: System, key: NewKey, first: Receiver, second: Receiver, clock: FrozenClock
) -> None:
    item_id = await approve(system, key, "chain")
    first.script = [503]  # the first link must succeed before the second is even queued
    await system.worker.run_once()
    assert second.received == []
    assert (await system.reader.get(item_id=item_id)).release_state == "queued"
    clock.advance(timedelta(hours=1))
    await system.worker.run_once()  # first link delivered; the second queued with it
    await system.worker.run_once()
    assert [r.path for r in first.accepted()] == ["/send"]
    [notified] = second.accepted()
    assert first.accepted()[0].headers["Idempotency-Key"] == f"{item_id}:release"
    assert notified.headers["Idempotency-Key"] == f"{item_id}:release:1"
    assert json.loads(notified.body)["item"]["id"] == item_id
    assert (await system.reader.get(item_id=item_id)).release_state == "released"
    async with system.sessions() as session:
        rows = await outbox_store.deliveries_for(session, item_id=item_id)
    assert [(r.url.rsplit("/", 1)[1], r.state) for r in rows] == [
        ("send", "delivered"),
        ("notify", "delivered"),
    ]


def test_a_route_takes_one_target_or_a_chain_not_both() -> None:
    hook = {"type": "webhook", "url": "http://127.0.0.1/x"}
    with pytest.raises(ConfigError, match="give one target, or a chain in targets"):
        parse_routes(
            {
                "routes": {
                    "r": {
                        "target": hook,
                        "targets": [hook],
                        "callback_hosts": ["127.0.0.1"],
                        "allow_private_callbacks": True,
                    }
                }
            }
        )
    with pytest.raises(ConfigError, match=r"targets\.1\.url: host 'evil\.example' is not in"):
        parse_routes(
            {
                "routes": {
                    "r": {
                        "targets": [hook, {"type": "webhook", "url": "http://evil.example/"}],
                        "callback_hosts": ["127.0.0.1"],
                        "allow_private_callbacks": True,
                    }
                }
            }
        )


def test_a_target_type_that_is_not_configured_fails_at_start(tmp_path: Path) -> None:
    routes = parse_routes(
        {"routes": {"r": {"targets": [{"type": "email", "from": "help@example.com"}]}}}
    )
    settings = load_settings({"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"})
    with pytest.raises(ConfigError, match=r"routes\.r\.targets\.0\.type: .*set SIGNOFF_SMTP_URL"):
        build(settings, routes=routes)


async def test_a_target_down_for_a_while_ends_released_with_every_attempt_in_history(
    system: System, key: NewKey, clock: FrozenClock, late_port: int
) -> None:
    item_id = await approve(system, key, "flaky")
    await system.worker.run_once()  # nothing listens yet: connection refused
    clock.advance(timedelta(hours=1))
    late = await Receiver(script=[503, 503]).start(port=late_port)
    try:
        await drain(system, clock, passes=4)
    finally:
        await late.stop()
    item = await system.reader.get(item_id=item_id)
    assert item.release_state == "released"
    attempts = await system.web.inbox.attempts(item_id=item_id)
    details = [(a.attempt, a.ok, a.detail.split(":")[0]) for a in attempts]
    assert [d[:2] for d in details] == [(1, False), (2, False), (3, False), (4, True)]
    assert "ConnectError" in attempts[0].detail
    assert "HTTP 503" in attempts[1].detail and "HTTP 503" in attempts[2].detail
    assert attempts[3].detail == "HTTP 200"
    shown = [e.what for e in history(item, attempts)]
    assert shown.count("release attempt 1") == 1 and "release attempt 4" in shown


async def test_retry_turns_a_failed_release_into_released_with_the_same_key(
    system: System,
    key: NewKey,
    clock: FrozenClock,
    late_port: int,
    surface: RecordingSurface,
) -> None:
    item_id = await approve(system, key, "flaky")
    await drain(system, clock, passes=5)  # four refusals: failed
    item = await system.reader.get(item_id=item_id)
    assert item.release_state == "failed" and "ConnectError" in (item.release_error or "")
    card, _ = surface.updates[-1]  # the cards were refreshed when the release failed
    assert card.actions == ("retry",)
    assert card.release_note is not None and card.release_note.startswith("Release failed: ")
    with pytest.raises(NotAllowed):
        await system.retry.retry(item_id=item_id, actor=Actor("web", "mallory", "mallory"))
    late = await Receiver().start(port=late_port)
    try:
        retried = await system.retry.retry(item_id=item_id, actor=ANN)
        assert retried.release_state == "queued" and retried.release_error is None
        with pytest.raises(Conflict, match="is queued, not failed"):
            await system.retry.retry(item_id=item_id, actor=ANN)
        await system.worker.run_once()
    finally:
        await late.stop()
    [delivered] = late.accepted()
    assert delivered.headers["Idempotency-Key"] == f"{item_id}:release"
    assert (await system.reader.get(item_id=item_id)).release_state == "released"
    card, _ = surface.updates[-1]
    assert card.actions == () and card.release_note is None


async def test_releases_list_and_retry_from_the_command_line(
    tmp_path: Path, late_port: int
) -> None:
    config = tmp_path / "signoff.yaml"
    config.write_text(
        json.dumps(
            {
                "routes": {
                    "default": {
                        "target": {"type": "webhook", "url": f"http://127.0.0.1:{late_port}/in"},
                        "callback_hosts": ["127.0.0.1"],
                        "allow_private_callbacks": True,
                    }
                }
            }
        )
    )
    env = signoff_env(
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
        SIGNOFF_CONFIG=str(config),
        SIGNOFF_RELEASE_MAX_ATTEMPTS="1",
    )
    item = {"route": "default", "kind": "message", "title": "t", "content": {"text": "x"}}
    made = run(["submit", "-", "--json"], env=env, stdin=json.dumps(item))
    item_id = json.loads(made.stdout)["id"]
    assert run(["decide", item_id, "approve", "--as", "ann"], env=env).returncode == 0
    settings = load_settings({k: v for k, v in env.items() if k.startswith("SIGNOFF_")})
    system = build(settings)
    try:
        await system.worker.run_once()  # refused, and one attempt is all: failed
    finally:
        await system.close()
    listed = run(["releases", "list", "--failed", "--json"], env=env)
    [row] = json.loads(listed.stdout)
    assert row["item"] == item_id and row["state"] == "failed" and "ConnectError" in row["error"]
    table = run(["releases", "list", "--failed"], env=env).stdout.splitlines()
    assert table[0].split() == ["ITEM", "TARGET", "STATE", "ATTEMPTS", "DETAIL"]
    assert item_id in table[1]
    retried = run(["releases", "retry", item_id], env=env)
    assert retried.returncode == 0 and retried.stdout.strip() == f"{item_id}  release queued"
    again = run(["releases", "retry", item_id], env=env)
    assert again.returncode == 2 and "only a failed release can be retried" in again.stderr
    late = await Receiver().start(port=late_port)
    system = build(settings)
    try:
        await system.worker.run_once()
    finally:
        await system.close()
        await late.stop()
    [delivered] = late.accepted()
    assert delivered.headers["Idempotency-Key"] == f"{item_id}:release"
    assert run(["releases", "list", "--failed", "--json"], env=env).stdout.strip() == "[]"
