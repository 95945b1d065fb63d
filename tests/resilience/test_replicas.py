"""Several ``signoff serve`` replicas on one PostgreSQL, and faults: replicas killed with
SIGKILL (the Discord gateway leader, replicas in the middle of releases) and PostgreSQL
restarted under load (issue 11).

Everything runs as real processes against loopback fakes: the Slack emulator, the
Discord fake, an idempotent receiver for releases, and a PostgreSQL cluster of this
module's own (see tests/resilience/cluster.py). Decisions come in through Slack (signed
``block_actions`` posts to ``/slack/events``) and through the web inbox's form
(``POST /items/{id}/decide`` with a signed-in reviewer's session and CSRF token), each
at a random replica. Each test prints its figures (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from bot.api import install_error_handlers
from bot.dberrors import database_unavailable
from tests.fakes.discord import OP_IDENTIFY, DiscordFake
from tests.fakes.slack import SlackEmulator
from tests.resilience.cluster import (
    SLACK_SECRET,
    SLACK_TOKEN,
    Cluster,
    IdempotentReceiver,
    PrivatePostgres,
    block_actions,
    bounded,
    eventually,
    pg_bin,
    query,
    sign_in,
    slack_click,
    socket_owner,
    start_cluster,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(pg_bin()).init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def db_url(postgres: PrivatePostgres) -> str:
    """A fresh database on the module's PostgreSQL."""
    return await postgres.create_database(f"signoff_{secrets.token_hex(4)}")


@pytest.fixture
async def receiver() -> AsyncIterator[IdempotentReceiver]:
    target = await IdempotentReceiver().start()
    yield target
    await target.stop()


def _report(**figures: object) -> None:
    print("\nfigures: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# -- 1,000 items across three replicas ---------------------------------------------------

ROUTES = 500  # two cards per channel: Slack paces posts to ~1/s per channel and process
ITEMS = 1000
NUDGE_AFTER = 10  # seconds: longer than a card can wait for its channel's turn


def _review_routes(receiver_url: str) -> dict[str, Any]:
    return {
        f"r{n:03d}": {
            "surfaces": [{"type": "slack", "channel": f"C0R{n:03d}"}, {"type": "web"}],
            "reviewers": {"slack": ["U0LEAD"], "web": ["rita"]},
            "target": {"type": "webhook", "url": f"{receiver_url}/release"},
            "callback_hosts": ["127.0.0.1"],  # the receiver's host
            "allow_private_callbacks": True,  # ... on loopback
            "escalation": [{"after": f"{NUDGE_AFTER}s", "do": "nudge"}],
            "digest": {"threshold": 50},  # every reminder is a thread reply, none a digest
        }
        for n in range(ROUTES)
    }


async def test_a_thousand_items_across_three_replicas_are_decided_released_and_nudged_once(
    tmp_path: Path, db_url: str, receiver: IdempotentReceiver
) -> None:
    async with SlackEmulator() as slack:
        cluster = await start_cluster(
            workdir=tmp_path,
            db_url=db_url,
            routes=_review_routes(receiver.url),
            size=3,
            settings={
                "SIGNOFF_SLACK_BOT_TOKEN": SLACK_TOKEN,
                "SIGNOFF_SLACK_SIGNING_SECRET": SLACK_SECRET,
                "SIGNOFF_SLACK_API_URL": slack.url,
                "SIGNOFF_SWEEP_INTERVAL_SECONDS": "1",
                "SIGNOFF_RELEASE_BACKOFF_SECONDS": "0.2",
            },
        )
        try:
            await _thousand_items(cluster, slack, receiver)
        except BaseException:
            print(cluster.logs())
            raise
        finally:
            cluster.stop()


async def _thousand_items(
    cluster: Cluster, slack: SlackEmulator, receiver: IdempotentReceiver
) -> None:
    started = time.monotonic()
    # No keep-alive: uvicorn closes idle connections after 5 s, racing a reused one.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def submit(n: int) -> str:
            answer = await http.post(
                f"{cluster.pick().base}/v1/items",
                headers=cluster.headers,
                json={
                    "route": f"r{n % ROUTES:03d}",
                    "kind": "message",
                    "title": f"Draft {n}",
                    "content": {"text": f"draft number {n}"},
                },
            )
            assert answer.status_code == 201, answer.text
            return str(answer.json()["id"])

        ids = await bounded(48, (submit(n) for n in range(ITEMS)))
        submitted = time.monotonic() - started
        assert len(set(ids)) == ITEMS

        # Every card is on Slack once; the replicas' sweeps nudge each item once.
        posts = await query(
            cluster.dsn, "SELECT item_id, ref FROM posts WHERE surface = 'slack' ORDER BY id"
        )
        assert sorted(p["item_id"] for p in posts) == sorted(ids)

        async def nudged() -> int | None:
            [row] = await query(
                cluster.dsn, "SELECT count(*) AS n FROM step_runs WHERE state = 'done'"
            )
            return int(row["n"]) if row["n"] >= ITEMS else None

        await eventually(nudged, within=90, what=f"{ITEMS} nudges done")
        nudges_done = time.monotonic() - started

        # Decide at random replicas: half through Slack, half through the web inbox, and
        # one in ten through both at once (the race: one decision wins).
        rita = await sign_in(cluster, http, "rita")
        refs = {p["item_id"]: _ref(p["ref"]) for p in posts}
        web_answers: Counter[int] = Counter()

        async def by_slack(item_id: str) -> None:
            channel, ts = refs[item_id]
            payload = block_actions(
                item_id=item_id, verb="approve", user="U0LEAD", channel=channel, ts=ts
            )
            answer = await slack_click(http, cluster.pick().base, payload)
            assert answer.status_code == 200, answer.text

        async def by_web(item_id: str) -> None:
            answer = await rita.decide(http, cluster.pick().base, item_id)
            web_answers[answer.status_code] += 1
            assert answer.status_code in (303, 409), answer.text

        async def decide(n: int, item_id: str) -> None:
            if n % 10 == 0:
                await asyncio.gather(by_slack(item_id), by_web(item_id))
            elif n % 2:
                await by_slack(item_id)
            else:
                await by_web(item_id)

        order = list(enumerate(ids))
        random.shuffle(order)
        await bounded(32, (decide(n, item_id) for n, item_id in order))

        async def all_released() -> bool:
            [row] = await query(
                cluster.dsn,
                "SELECT count(*) AS n FROM items WHERE state = 'approved' "
                "AND release_state = 'released'",
            )
            return bool(row["n"] == ITEMS)

        await eventually(all_released, within=90, what=f"{ITEMS} items approved and released")
        released = time.monotonic() - started

    # Exactly one outcome per item: one decision row, approved.
    decisions = await query(
        cluster.dsn, "SELECT item_id, count(*) AS n FROM decisions GROUP BY item_id"
    )
    assert {d["item_id"]: d["n"] for d in decisions} == dict.fromkeys(ids, 1)
    outcomes = await query(cluster.dsn, "SELECT outcome, count(*) AS n FROM items GROUP BY 1")
    assert [(o["outcome"], o["n"]) for o in outcomes] == [("approved", ITEMS)]
    surfaces = await query(
        cluster.dsn, "SELECT surface, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1"
    )
    by_surface = {s["surface"]: s["n"] for s in surfaces}
    assert set(by_surface) == {"slack", "web"} and sum(by_surface.values()) == ITEMS

    # Exactly one release delivery per item at the receiver (no fault here: not even a
    # repeat at the transport level).
    assert receiver.requests == Counter({f"{i}:release": 1 for i in ids})
    assert receiver.effects_per_item() == Counter(dict.fromkeys(ids, 1))

    # Every nudge step fired once: one step run per item, one reminder in each card's
    # thread, each carrying its own key.
    steps = await query(cluster.dsn, "SELECT item_id, step, action, state FROM step_runs")
    assert sorted((s["item_id"], s["step"], s["action"], s["state"]) for s in steps) == sorted(
        (i, 0, "nudge", "done") for i in ids
    )
    reminders: Counter[tuple[str, str]] = Counter()
    keys: set[str] = set()
    for channel, messages in slack.messages.items():
        for message in messages:
            meta = message.get("metadata") or {}
            if message.get("thread_ts") and meta.get("event_type") == "signoff_reminder":
                reminders[(channel, message["thread_ts"])] += 1
                keys.add(meta["event_payload"]["key"])
    assert reminders == Counter(dict.fromkeys(refs.values(), 1))
    assert len(keys) == ITEMS
    cards = [m for ms in slack.messages.values() for m in ms if not m.get("thread_ts")]
    assert len(cards) == ITEMS  # each card posted once

    _report(
        items=ITEMS,
        submitted_s=round(submitted, 1),
        nudged_s=round(nudges_done, 1),
        released_s=round(released, 1),
        decisions=by_surface,
        web_answers=dict(web_answers),
        transport_duplicates=receiver.duplicates,
        replica_cpu_s=round(sum(r.cpu_seconds() for r in cluster.replicas)),
    )


def _ref(ref: Any) -> tuple[str, str]:
    data = ref if isinstance(ref, dict) else json.loads(ref)
    return str(data["channel"]), str(data["ts"])


# -- the Discord gateway leader ------------------------------------------------------------

DISCORD_TOKEN = "resilience-discord-token"
TAKEOVER_LIMIT = 10.0  # seconds, from the issue


async def _leaders(cluster: Cluster, http: httpx.AsyncClient) -> list[tuple[Any, Any]]:
    running = [r for r in cluster.replicas if r.running]
    healths = await asyncio.gather(*(r.health(http) for r in running))
    return list(zip(running, healths, strict=True))


def _identifies(fake: DiscordFake) -> int:
    return sum(1 for frame in fake.gateway_received if frame.get("op") == OP_IDENTIFY)


async def test_killing_the_discord_leader_hands_the_gateway_to_another_replica_in_10s(
    tmp_path: Path, db_url: str
) -> None:
    async with DiscordFake(token=DISCORD_TOKEN) as fake:
        lead = next(uid for uid, m in fake.members.items() if m["username"] == "lead")
        cluster = await start_cluster(
            workdir=tmp_path,
            db_url=db_url,
            routes={
                "code": {
                    "surfaces": [{"type": "discord", "channel": str(fake.channel_id)}],
                    "reviewers": {"discord": [str(lead)]},
                }
            },
            size=3,
            settings={
                "SIGNOFF_DISCORD_TOKEN": DISCORD_TOKEN,
                "SIGNOFF_DISCORD_API_URL": fake.rest_url,
                "SIGNOFF_DISCORD_GATEWAY_URL": fake.gateway_url,
            },
        )
        try:
            await _leader_takeover(cluster, fake, lead)
        except BaseException:
            print(cluster.logs())
            raise
        finally:
            cluster.stop()


async def _leader_takeover(cluster: Cluster, fake: DiscordFake, lead: int) -> None:
    seen: list[Any] = []
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:

        async def sole_leader() -> Any:
            states = await _leaders(cluster, http)
            seen[:] = [(r.name, h) for r, h in states]
            leaders = [r for r, h in states if h and h.get("leader") is True]
            followers = [r for r, h in states if h and h.get("leader") is False]
            if len(leaders) == 1 and len(leaders) + len(followers) == len(states):
                return leaders[0]
            return None

        try:
            leader = await eventually(sole_leader, within=30, what="one leader")
        except AssertionError:
            raise AssertionError(f"no single leader in /healthz: {seen}") from None
        await fake.wait_ready(within=30)
        assert _identifies(fake) == 1  # only the leader opened a gateway session
        before = _identifies(fake)

        killed = time.monotonic()
        leader.kill()

        async def reconnected() -> bool:
            return _identifies(fake) > before

        try:
            successor = await eventually(
                sole_leader, within=TAKEOVER_LIMIT + 5, what="a new leader", every=0.05
            )
        except AssertionError:
            raise AssertionError(f"no new leader in /healthz: {seen}") from None
        elected = time.monotonic() - killed
        await eventually(reconnected, within=TAKEOVER_LIMIT + 5, what="a new IDENTIFY", every=0.05)
        takeover = time.monotonic() - killed
        assert successor is not leader
        assert takeover <= TAKEOVER_LIMIT, f"the gateway came back after {takeover:.1f}s"

        # A click reaches the new leader's gateway session and decides the item.
        answer = await http.post(
            f"{cluster.pick().base}/v1/items",
            headers=cluster.headers,
            json={"route": "code", "kind": "message", "title": "Ship it", "content": {"text": "x"}},
        )
        assert answer.status_code == 201, answer.text
        item_id = answer.json()["id"]

        async def card() -> Any:
            return next((m for m in fake.messages_in() if item_id in json.dumps(m)), None)

        message = await eventually(card, within=15, what="the card on Discord")
        click = fake.button_interaction(
            custom_id=f"signoff:approve:{item_id}", user_id=lead, message_id=int(message["id"])
        )
        await fake.send_interaction(click)
        callback = await fake.wait_for_callback(int(click["id"]), within=5)

        async def approved() -> Any:
            item = (
                await http.get(f"{successor.base}/v1/items/{item_id}", headers=cluster.headers)
            ).json()
            return item if item["state"] != "pending" else None

        item = await eventually(approved, within=15, what="the click decided the item")
    assert item["outcome"] == "approved" and item["decisions"][-1]["actor_id"] == str(lead)
    _report(
        leader_elected_s=round(elected, 2),
        gateway_identify_s=round(takeover, 2),
        click_callback_s=round(callback.latency, 2),
    )


# -- kill -9 in the middle of releases -----------------------------------------------------

KILLS = 20
LEASE = 3.0  # seconds a claimed delivery is held (SIGNOFF_RELEASE_LEASE_SECONDS)


async def test_kill_9_in_the_middle_of_releases_twenty_times_loses_and_repeats_nothing(
    tmp_path: Path, db_url: str
) -> None:
    receiver = await IdempotentReceiver(delay=(0.05, 0.2)).start()  # deliveries in flight
    cluster = await start_cluster(
        workdir=tmp_path,
        db_url=db_url,
        routes={
            "ship": {
                "thresholds": {"auto_approve_at": 0.9},  # approved at submit: a release each
                "target": {"type": "webhook", "url": f"{receiver.url}/release"},
                "callback_hosts": ["127.0.0.1"],
                "allow_private_callbacks": True,
            }
        },
        size=3,
        settings={
            "SIGNOFF_RELEASE_TIMEOUT_SECONDS": "2",
            "SIGNOFF_RELEASE_LEASE_SECONDS": str(LEASE),
            "SIGNOFF_RELEASE_BACKOFF_SECONDS": "0.2",
            "SIGNOFF_RELEASE_BACKOFF_MAX_SECONDS": "1",
            "SIGNOFF_RELEASE_MAX_ATTEMPTS": "100",
        },
    )
    try:
        await _kill_during_releases(cluster, receiver)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
        await receiver.stop()


async def _kill_during_releases(cluster: Cluster, receiver: IdempotentReceiver) -> None:
    stop = asyncio.Event()
    acknowledged: list[str] = []
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:

        async def submitter() -> None:
            while not stop.is_set():
                if not cluster.ready():  # never for long: one replica is always left up
                    await asyncio.sleep(0.05)
                    continue
                try:
                    answer = await http.post(
                        f"{cluster.pick().base}/v1/items",
                        headers=cluster.headers,
                        json={
                            "route": "ship",
                            "kind": "message",
                            "title": "Release me",
                            "content": {"text": "go"},
                            "confidence": 0.95,
                        },
                    )
                except httpx.HTTPError:
                    continue  # the replica died under the request: not acknowledged
                if answer.status_code == 201:
                    acknowledged.append(answer.json()["id"])
                await asyncio.sleep(0.05)  # a steady stream, not a flood

        submitters = [asyncio.create_task(submitter()) for _ in range(4)]
        starting: list[asyncio.Task[Any]] = []
        mid_delivery = 0
        try:
            for _ in range(KILLS):
                await asyncio.sleep(random.uniform(0.1, 0.5))  # a random moment
                victim, busy = await _victim(cluster, receiver)
                mid_delivery += busy
                victim.kill()
                starting.append(asyncio.create_task(cluster.spawn().wait_ready()))
            last_kill = time.monotonic()
        finally:
            stop.set()
            await asyncio.gather(*submitters, return_exceptions=True)
            await asyncio.gather(*starting)

    async def all_delivered() -> bool:
        [row] = await query(
            cluster.dsn,
            "SELECT count(*) FILTER (WHERE state <> 'delivered') AS open, count(*) AS n "
            "FROM deliveries",
        )
        return bool(row["open"] == 0)

    # A delivery held by a killed replica is free again when its lease ends: nothing may
    # stay stuck past that (plus the workers' polling).
    await eventually(all_delivered, within=LEASE + 15, what="every release delivered")
    drained = time.monotonic() - last_kill

    items = await query(cluster.dsn, "SELECT id, state, release_state FROM items")
    ids = {i["id"] for i in items}
    assert len(ids) >= 50 and mid_delivery >= KILLS // 2  # the kills did land mid-release
    assert set(acknowledged) <= ids
    assert {(i["state"], i["release_state"]) for i in items} == {("approved", "released")}
    deliveries = await query(cluster.dsn, "SELECT item_id, attempts, claimed_until FROM deliveries")
    assert sorted(d["item_id"] for d in deliveries) == sorted(ids)  # one release row each
    assert all(d["claimed_until"] is None for d in deliveries)
    # One key per item however often it was sent, so exactly one effect per item.
    assert set(receiver.requests) == {f"{i}:release" for i in ids}
    assert receiver.effects_per_item() == Counter(dict.fromkeys(ids, 1))
    retried = sum(1 for d in deliveries if d["attempts"] > 1)
    _report(
        items=len(ids),
        kills=KILLS,
        kills_mid_delivery=mid_delivery,
        deliveries_retried=retried,
        transport_duplicates=receiver.duplicates,
        effects=len(receiver.effects),
        drained_after_last_kill_s=round(drained, 1),
    )


async def _victim(cluster: Cluster, receiver: IdempotentReceiver) -> tuple[Any, bool]:
    """A ready replica to kill, one with a delivery in flight at the receiver when there
    is one within 3 s; never the last one up (the API stays served)."""
    deadline, give_up = time.monotonic() + 3.0, time.monotonic() + 60
    while True:
        ready = cluster.ready()
        assert time.monotonic() < give_up, "the replacements did not come up"
        if len(ready) >= 2:
            pids = [r.pid for r in ready if r.pid is not None]
            owners = {socket_owner(port, pids) for port in receiver.in_flight_ports()}
            busy = [r for r in ready if r.pid in owners]
            if busy:
                return random.choice(busy), True
            if time.monotonic() > deadline:
                return random.choice(ready), False
        await asyncio.sleep(0.01)  # waiting for a replacement to listen, or for a delivery


# -- PostgreSQL restarted under load -------------------------------------------------------


OUTAGE = 3.0  # seconds PostgreSQL stays down


async def test_a_postgresql_restart_answers_503_and_loses_no_acknowledged_decision(
    tmp_path: Path, receiver: IdempotentReceiver
) -> None:
    server = PrivatePostgres(pg_bin()).init()  # its own: restarting it disturbs no other test
    await asyncio.to_thread(server.start)
    try:
        cluster = await start_cluster(
            workdir=tmp_path,
            db_url=await server.create_database("signoff"),
            routes={
                "desk": {
                    "surfaces": [{"type": "web"}],
                    "reviewers": {"web": ["rita"]},
                    "target": {"type": "webhook", "url": f"{receiver.url}/release"},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                }
            },
            size=2,
            settings={
                "SIGNOFF_RELEASE_BACKOFF_SECONDS": "0.2",
                "SIGNOFF_RELEASE_MAX_ATTEMPTS": "50",
                # A delivery whose bookkeeping failed in the outage stays claimed until
                # its lease ends (70 s by default): short here, to see it go out after.
                "SIGNOFF_RELEASE_LEASE_SECONDS": "5",
            },
        )
        try:
            await _restart_under_load(cluster, server, receiver)
        except BaseException:
            print(cluster.logs())
            raise
        finally:
            cluster.stop()
    finally:
        await asyncio.to_thread(server.destroy)


async def _restart_under_load(
    cluster: Cluster, server: PrivatePostgres, receiver: IdempotentReceiver
) -> None:
    answers: Counter[tuple[str, str, int]] = Counter()  # (phase, call, status)
    phase = "before"
    submitted: list[str] = []
    decided: list[str] = []  # acknowledged: the inbox answered 303
    refusals: Counter[str] = Counter()  # error codes of the 503 answers
    stop = asyncio.Event()
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=15, limits=limits) as http:
        rita = await sign_in(cluster, http, "rita")

        async def call(what: str, request: Any) -> httpx.Response | None:
            try:
                answer: httpx.Response = await request
            except httpx.HTTPError:
                answers[(phase, what, 0)] += 1  # no answer at all: counted as a failure
                return None
            answers[(phase, what, answer.status_code)] += 1
            if answer.status_code == 503:
                refusals[answer.json()["error"]["code"]] += 1
            return answer

        async def load() -> None:
            while not stop.is_set():
                item = {"route": "desk", "kind": "message", "title": "T", "content": {"text": "x"}}
                base = cluster.pick().base
                answer = await call(
                    "submit", http.post(f"{base}/v1/items", headers=cluster.headers, json=item)
                )
                if answer is not None and answer.status_code == 201:
                    item_id = answer.json()["id"]
                    submitted.append(item_id)
                    verdict = await call("decide", rita.decide(http, cluster.pick().base, item_id))
                    if verdict is not None and verdict.status_code == 303:
                        decided.append(item_id)
                await asyncio.sleep(0.02)  # four clients at a steady pace

        def count(where: str, status: int) -> int:
            return sum(n for (p, _, s), n in answers.items() if (p, s) == (where, status))

        workers = [asyncio.create_task(load()) for _ in range(4)]
        try:
            await eventually(
                _at_least(lambda: len(decided), 20), within=30, what="decisions before"
            )
            phase = "outage"
            down = time.monotonic()
            await asyncio.to_thread(server.stop, "fast")
            readyz = [(await http.get(f"{r.base}/readyz")).status_code for r in cluster.replicas]
            # Down for at least OUTAGE seconds, and long enough to see the API refuse.
            await eventually(
                _at_least(lambda: count("outage", 503), 20), within=15, what="503s in the outage"
            )
            await asyncio.sleep(max(0.0, down + OUTAGE - time.monotonic()))
            outage = time.monotonic() - down
            phase = "restarting"
            await asyncio.to_thread(server.start)
            phase = "after"
            mark = len(decided)
            back = time.monotonic()
            await eventually(
                _at_least(lambda: len(decided) - mark, 20), within=30, what="decisions after"
            )
            recovered = time.monotonic() - back
        finally:
            stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
        ready_after = [(await http.get(f"{r.base}/readyz")).status_code for r in cluster.replicas]

    assert readyz == [503] * len(cluster.replicas)
    assert ready_after == [200] * len(cluster.replicas)
    # 201 and 303 when the database is there, 503 when it is not; nothing else, and
    # every request answered.
    others = {k: n for k, n in answers.items() if k[2] not in (201, 303, 503)}
    assert others == {}, f"unexpected answers around a database outage: {answers}"
    assert count("outage", 503) > 0
    assert set(refusals) == {"database_unavailable"}
    # Every acknowledged submission and decision is in the database.
    rows = await query(
        cluster.dsn,
        "SELECT i.id, i.state, count(d.id) AS decisions FROM items i "
        "LEFT JOIN decisions d ON d.item_id = i.id GROUP BY i.id, i.state",
    )
    stored = {r["id"]: (r["state"], r["decisions"]) for r in rows}
    assert set(submitted) <= set(stored)
    assert {stored[i] for i in decided} == {("approved", 1)}

    async def released() -> bool:
        return set(decided) <= {str(b["item"]["id"]) for b in receiver.effects.values()}

    await eventually(released, within=30, what="the acknowledged decisions released")
    _report(
        outage_s=round(outage, 1),
        recovered_s=round(recovered, 1),
        all_released_after_restart_s=round(time.monotonic() - back, 1),
        answers_503=sum(n for (_, _, s), n in answers.items() if s == 503),
        answers=dict(sorted(answers.items())),
        acknowledged_decisions=len(decided),
    )


def _at_least(value: Any, n: int) -> Any:
    async def check() -> bool:
        return bool(value() >= n)

    return check


async def test_database_outage_errors_answer_503_and_other_database_errors_stay_500() -> None:
    """bot/dberrors.py on its own: what counts as the database being unavailable."""
    refused = ConnectionRefusedError(111, "Connect call failed")
    invalidated = sa_exc.DBAPIError(
        "SELECT 1", {}, Exception("closed"), connection_invalidated=True
    )
    shutting_down = sa_exc.DBAPIError("SELECT 1", {}, _Sqlstate("57P01"))
    constraint = sa_exc.IntegrityError("INSERT", {}, _Sqlstate("23505"))
    assert database_unavailable(refused) and database_unavailable(invalidated)
    assert database_unavailable(shutting_down)
    assert not database_unavailable(constraint) and not database_unavailable(ValueError("x"))

    app = FastAPI()
    install_error_handlers(app)
    raised: dict[str, Exception] = {"/down": refused, "/bug": constraint}

    @app.get("/{what}")
    async def fail(what: str) -> None:
        raise raised[f"/{what}"]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        down, bug = await client.get("/down"), await client.get("/bug")
    assert down.status_code == 503 and down.headers["retry-after"] == "2"
    assert down.json()["error"]["code"] == "database_unavailable"
    assert bug.status_code == 500


class _Sqlstate(Exception):
    """A driver error as asyncpg raises them: with the PostgreSQL error code."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate
