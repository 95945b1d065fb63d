"""The escalation sweep with an injected clock and recording surfaces, on SQLite and
PostgreSQL: nudges, escalation, expiry, working hours, digests, crash recovery."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import System, build
from bot.auth import Integrator, NewKey
from bot.clock import FrozenClock
from bot.errors import Conflict
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from bot.secrets import verify
from bot.settings import load_settings
from bot.sweep import SweepReport
from storage import steps as step_store
from storage.migrate import upgrade
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
CHAIN = [
    {"after": "30m", "do": "nudge"},
    {"after": "2h", "do": "nudge"},
    {
        "after": "4h",
        "do": "escalate",
        "surface": "slack",
        "channel": "C0ESC",
        "mention": {"slack": ["S0ONCALL"]},
    },
    {"after": "24h", "do": "expire", "on_expire": "reject"},
]


def chat_route(**extra: Any) -> dict[str, Any]:
    return {
        "surfaces": [
            {"type": "slack", "channel": "C0REVIEW"},
            {"type": "discord", "channel": "42"},
        ],
        "reviewers": {"slack": ["U0ANN", "S0TEAM"], "discord": ["1001"]},
        "callback_hosts": ["127.0.0.1"],
        "allow_private_callbacks": True,
        **extra,
    }


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def routes(receiver: Receiver) -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "support": chat_route(escalation=CHAIN),
                "lenient": chat_route(
                    escalation=[{"after": "1h", "do": "expire", "on_expire": "approve"}],
                    target={"type": "webhook", "url": f"{receiver.url}/release"},
                ),
                "patient": chat_route(
                    escalation=[
                        {"after": "1h", "do": "expire", "on_expire": "keep"},
                        {"after": "3h", "do": "nudge"},
                    ]
                ),
                "office": chat_route(
                    escalation=[{"after": "30m", "do": "nudge"}],
                    working_hours={
                        "timezone": "Europe/Berlin",
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "09:00",
                        "end": "17:00",
                    },
                ),
                "busy": chat_route(
                    surfaces=[{"type": "slack", "channel": "C0BUSY"}],
                    escalation=[{"after": "30m", "do": "nudge"}],
                ),
                "webonly": {"escalation": [{"after": "30m", "do": "nudge"}]},
            }
        }
    )


@pytest.fixture
async def key(system: System) -> NewKey:
    return await system.keys.create(name="agent")


@pytest.fixture
async def integrator(system: System, key: NewKey) -> Integrator:
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    return found


@pytest.fixture
def slack() -> RecordingSurface:
    return RecordingSurface(name="slack")


@pytest.fixture
def discord() -> RecordingSurface:
    return RecordingSurface(name="discord")


@pytest.fixture
async def system(
    db_url: str,
    routes: RouteTable,
    clock: FrozenClock,
    slack: RecordingSurface,
    discord: RecordingSurface,
) -> AsyncIterator[System]:
    sys_ = build(
        load_settings({"SIGNOFF_DATABASE_URL": db_url, "SIGNOFF_SWEEP_LEASE_SECONDS": "60"}),
        clock=clock,
        routes=routes,
        surfaces={
            "web": RecordingSurface(name="web", remembers=False),
            "slack": slack,
            "discord": discord,
        },
    )
    await upgrade(sys_.engine)
    try:
        yield sys_
    finally:
        await sys_.close()


async def submit(
    system: System, integrator: Integrator, route: str = "support", **extra: Any
) -> str:
    data = ItemCreate(route=route, kind="email", title="Refund", content=EMAIL, **extra)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


def actions(slack: RecordingSurface, discord: RecordingSurface) -> list[tuple[str, ...]]:
    """Everything the sweep asked of the surfaces, in a comparable form."""
    out: list[tuple[str, ...]] = []
    for surface in (slack, discord):
        out += [
            (surface.name, "nudge", n.card.item_id, n.text, *n.mentions) for n in surface.nudges
        ]
        out += [(surface.name, "post", card.item_id, str(ch)) for card, ch in surface.posts]
        out += [(surface.name, "digest", a.heading) for a in surface.announcements]
    return sorted(out)


async def test_the_chain_fires_each_step_at_its_time_and_stops_at_a_decision(
    system: System,
    integrator: Integrator,
    clock: FrozenClock,
    slack: RecordingSurface,
    discord: RecordingSurface,
) -> None:
    start = clock.now()
    waiting = await submit(system, integrator)
    decided = await submit(system, integrator)
    baseline = actions(slack, discord)  # the two cards, posted on both surfaces
    timeline: dict[str, list[tuple[str, ...]]] = {}
    for minutes in (29, 30, 60, 119, 120, 239, 240, 1439, 1440, 1500):
        clock._now = start + timedelta(minutes=minutes)
        if minutes == 60:
            await system.service.decide(
                item_id=decided, action="approve", actor=Actor("slack", "U0ANN", "ann")
            )
        before = actions(slack, discord)
        await system.sweeper.run_once()
        after = actions(slack, discord)
        timeline[f"{minutes}m"] = [a for a in after if a not in before]
    assert actions(slack, discord)[: len(baseline)] or baseline

    def nudge(surface: str, item: str, text: str) -> tuple[str, ...]:
        who = ("U0ANN", "S0TEAM") if surface == "slack" else ("1001",)
        return (surface, "nudge", item, text, *who)

    first = "Still waiting for review after 30 min."
    second = "Still waiting for review after 2 h."
    assert timeline["29m"] == []
    assert sorted(timeline["30m"]) == sorted(
        nudge(s, i, first) for s in ("slack", "discord") for i in (waiting, decided)
    )
    assert timeline["60m"] == [] and timeline["119m"] == []
    assert sorted(timeline["120m"]) == sorted(
        nudge(s, waiting, second) for s in ("slack", "discord")
    )
    assert timeline["239m"] == []
    assert sorted(timeline["240m"]) == sorted(
        [
            ("slack", "post", waiting, "C0ESC"),
            ("slack", "nudge", waiting, "Escalated: waiting for review for 4 h.", "S0ONCALL"),
        ]
    )
    assert timeline["1439m"] == [] and timeline["1500m"] == []
    assert timeline["1440m"] == []  # expiry updates the cards; it pings nobody
    item = await system.reader.get(item_id=waiting)
    assert (item.state, item.outcome) == ("expired", "expired")
    status = "Expired after 24 h — rejected by policy"
    updated = [(c.item_id, c.status, c.actions) for c, _ in slack.updates + discord.updates]
    # the review card on both surfaces and the escalation card: all updated in place
    assert updated.count((waiting, status, ())) == 3
    async with system.sessions() as session:
        runs = {i: await step_store.runs_for(session, item_id=i) for i in (waiting, decided)}
    assert [(r.step, r.action, r.state) for r in runs[waiting]] == [
        (0, "nudge", "done"),
        (1, "nudge", "done"),
        (2, "escalate", "done"),
        (3, "expire", "done"),
    ]
    assert [(r.step, r.action) for r in runs[decided]] == [(0, "nudge")]


async def test_a_nudge_due_on_saturday_night_waits_for_monday_morning(
    system: System,
    integrator: Integrator,
    clock: FrozenClock,
    slack: RecordingSurface,
) -> None:
    # Saturday 2026-01-10 02:30 in Berlin (01:30 UTC): the nudge is due at 03:00 local.
    clock._now = datetime(2026, 1, 10, 1, 30, tzinfo=UTC)
    await submit(system, integrator, route="office")
    for at in (
        datetime(2026, 1, 10, 2, 0, tzinfo=UTC),  # Saturday 03:00 local: due, but off hours
        datetime(2026, 1, 11, 12, 0, tzinfo=UTC),  # Sunday
        datetime(2026, 1, 12, 7, 59, tzinfo=UTC),  # Monday 08:59 local
    ):
        assert (await system.sweeper.run_once(now=at)).fired == 0
    assert slack.nudges == []
    report = await system.sweeper.run_once(now=datetime(2026, 1, 12, 8, 0, tzinfo=UTC))
    assert report.nudged == 2 and len(slack.nudges) == 1  # Monday 09:00 local, slack+discord


async def test_expiry_is_its_own_outcome_in_the_signed_callback(
    system: System, integrator: Integrator, key: NewKey, clock: FrozenClock, receiver: Receiver
) -> None:
    item_id = await submit(
        system, integrator, callback_url=f"{receiver.url}/hook", requested_by="agent-7"
    )
    clock.advance(timedelta(hours=24))
    report = await system.sweeper.run_once()
    assert report.expired == 1 and report.skipped == 3  # the earlier steps, due too
    await system.worker.run_once()
    [callback] = receiver.accepted()
    body = json.loads(callback.body)
    assert body["event"] == "item.decided"
    assert (body["item"]["state"], body["item"]["outcome"]) == ("expired", "expired")
    assert body["item"]["release_state"] == "none"
    [decision] = body["item"]["decisions"]
    assert decision["action"] == "expire" and decision["reason_code"] == "reject"
    assert decision["reason_text"] == "after 24 h — rejected by policy"
    assert verify(
        secret=key.signing_secret,
        header=callback.headers["Signoff-Signature"],
        body=callback.body,
        now=int(time.time()),  # the target signs with the wall clock
    )
    with pytest.raises(Conflict, match="already expired"):
        await system.service.decide(
            item_id=item_id, action="approve", actor=Actor("slack", "U0ANN", "ann")
        )


async def test_expiry_that_approves_releases_the_draft_but_still_says_expired(
    system: System, integrator: Integrator, clock: FrozenClock, receiver: Receiver
) -> None:
    item_id = await submit(system, integrator, route="lenient")
    clock.advance(timedelta(hours=1))
    assert (await system.sweeper.run_once()).expired == 1
    item = await system.reader.get(item_id=item_id)
    assert (item.state, item.outcome, item.release_state) == ("expired", "expired", "queued")
    assert item.final_content == item.content
    await system.worker.run_once()
    [release] = receiver.accepted()
    assert json.loads(release.body)["event"] == "item.released"


async def test_keep_leaves_the_item_open_and_says_so_in_its_thread(
    system: System, integrator: Integrator, clock: FrozenClock, slack: RecordingSurface
) -> None:
    item_id = await submit(system, integrator, route="patient")
    clock.advance(timedelta(hours=1))
    report = await system.sweeper.run_once()
    assert report.kept == 1 and report.expired == 0
    assert (await system.reader.get(item_id=item_id)).state == "pending"
    [nudge] = slack.nudges
    assert nudge.text.startswith("Past its 1 h expiry; kept open by policy")
    clock.advance(timedelta(hours=2))
    assert (await system.sweeper.run_once()).nudged == 2  # the chain goes on
    await system.service.decide(
        item_id=item_id, action="approve", actor=Actor("slack", "U0ANN", "a")
    )


async def test_twenty_stale_items_in_one_channel_make_one_digest(
    system: System, integrator: Integrator, clock: FrozenClock, slack: RecordingSurface
) -> None:
    ids = []
    for _ in range(20):
        ids.append(await submit(system, integrator, route="busy"))
        clock.advance(timedelta(seconds=10))
    clock.advance(timedelta(minutes=30))
    report = await system.sweeper.run_once()
    assert slack.nudges == []
    [digest] = slack.announcements
    assert digest.channel == "C0BUSY" and report.digests == 1 and report.in_digests == 20
    assert [e.item_id for e in digest.entries] == ids  # oldest first
    assert digest.entries[0].url.endswith(f"/items/{ids[0]}")
    assert digest.heading.startswith("20 items in busy are waiting")
    assert digest.mentions == ["U0ANN", "S0TEAM"]  # each reviewer once
    assert (await system.sweeper.run_once()).fired == 0  # and nothing fires twice


async def test_up_to_the_threshold_nudges_stay_individual(
    system: System, integrator: Integrator, clock: FrozenClock, slack: RecordingSurface
) -> None:
    for _ in range(5):
        await submit(system, integrator, route="busy")
    clock.advance(timedelta(minutes=30))
    await system.sweeper.run_once()
    assert len(slack.nudges) == 5 and slack.announcements == []


async def test_a_web_only_route_records_the_step_without_pinging_anyone(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator, route="webonly")
    clock.advance(timedelta(minutes=30))
    await system.sweeper.run_once()
    async with system.sessions() as session:
        [run] = await step_store.runs_for(session, item_id=item_id)
    assert run.state == "done" and "web inbox only" in run.detail


async def test_a_sweep_that_dies_midway_is_finished_by_the_next_without_repeats(
    system: System,
    integrator: Integrator,
    clock: FrozenClock,
    slack: RecordingSurface,
    discord: RecordingSurface,
) -> None:
    ids = [await submit(system, integrator) for _ in range(3)]
    clock.advance(timedelta(minutes=30))
    discord.fail_nudges = True  # slack reminders go out, discord's fail: the run stays open
    report = await system.sweeper.run_once()
    assert report.failed == 3 and len(slack.nudges) == 3 and discord.nudges == []
    assert (await system.sweeper.run_once()).fired == 0  # still leased: nobody retries yet
    discord.fail_nudges = False
    clock.advance(timedelta(seconds=61))
    report = await system.sweeper.run_once()
    assert report.recovered == 3
    assert len(slack.nudges) == 3  # not repeated
    assert sorted(n.card.item_id for n in discord.nudges) == sorted(ids)
    assert all(n.check_first for n in discord.nudges)  # may have gone out before the crash
    async with system.sessions() as session:
        runs = [r for i in ids for r in await step_store.runs_for(session, item_id=i)]
    assert [(r.state, r.attempts) for r in runs] == [("done", 2)] * 3


async def test_a_step_is_claimed_once_by_concurrent_sweeps(
    system: System, integrator: Integrator, clock: FrozenClock, slack: RecordingSurface
) -> None:
    import asyncio

    for _ in range(4):
        await submit(system, integrator)
    clock.advance(timedelta(minutes=30))
    reports: list[SweepReport] = await asyncio.gather(
        *(system.sweeper.run_once() for _ in range(4))
    )
    assert sum(r.nudged for r in reports) == 8  # 4 items, on slack and discord
    assert len(slack.nudges) == 4


async def test_the_history_and_metrics_show_the_steps(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator)
    clock.advance(timedelta(minutes=30))
    await system.sweeper.run_once()
    async with system.sessions() as session:
        [run] = await step_store.runs_for(session, item_id=item_id)
        counts = await step_store.counts(session)
    assert run.detail == "reminded on slack C0REVIEW; reminded on discord 42"
    assert ("support", "nudge", "done", 1) in counts


async def test_a_card_that_failed_to_post_is_posted_by_a_sweep_once(
    system: System,
    integrator: Integrator,
    clock: FrozenClock,
    slack: RecordingSurface,
    discord: RecordingSurface,
) -> None:
    slack.fail_posts = True  # Slack is down while the item is submitted
    item_id = await submit(system, integrator)
    assert slack.posts == [] and len(discord.posts) == 1
    clock.advance(timedelta(seconds=29))
    assert (await system.sweeper.run_once()).reposted == 0
    slack.fail_posts = False
    clock.advance(timedelta(seconds=1))
    assert (await system.sweeper.run_once()).reposted == 1
    assert [c.item_id for c, _ in slack.posts] == [item_id] and len(discord.posts) == 1
    clock.advance(timedelta(minutes=30))
    assert (await system.sweeper.run_once()).reposted == 0  # posted everywhere: done
    assert len(slack.posts) == 1 and len(slack.nudges) == 1  # and reminded in its thread


async def test_a_nudge_due_before_its_card_is_posted_waits_for_the_card(
    system: System,
    integrator: Integrator,
    clock: FrozenClock,
    slack: RecordingSurface,
    discord: RecordingSurface,
) -> None:
    slack.fail_posts = True  # Slack is down from the submit until the nudge is due
    item_id = await submit(system, integrator)
    clock.advance(timedelta(minutes=30))
    await system.sweeper.run_once()
    assert slack.posts == [] and slack.nudges == [] and len(discord.nudges) == 1
    async with system.sessions() as session:
        [run] = await step_store.runs_for(session, item_id=item_id)
    assert run.state != "done"  # not passed over: Slack's reviewers were not reminded
    slack.fail_posts = False
    for _ in range(2):  # Slack is back: the card is posted, then reminded in its thread
        clock.advance(timedelta(seconds=61))  # past the step's lease
        await system.sweeper.run_once()
    assert [c.item_id for c, _ in slack.posts] == [item_id] and len(slack.nudges) == 1
    assert len(discord.nudges) == 1  # reminded once, not again with Slack
    async with system.sessions() as session:
        [run] = await step_store.runs_for(session, item_id=item_id)
    assert run.state == "done"


async def test_a_submitter_that_dies_before_posting_leaves_the_card_to_a_sweep(
    system: System, integrator: Integrator, clock: FrozenClock, discord: RecordingSurface
) -> None:
    import asyncio

    async def die(**_: Any) -> None:
        raise asyncio.CancelledError  # the process goes away mid-post

    discord.post = die  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await submit(system, integrator)
    del discord.post
    [item] = (await system.reader.page(integrator_id=integrator.id)).items
    assert item.state == "pending"
    clock.advance(timedelta(minutes=9))
    assert (await system.sweeper.run_once()).reposted == 0  # the submitter may still be at it
    clock.advance(timedelta(minutes=1))
    assert (await system.sweeper.run_once()).reposted == 1
    assert [c.item_id for c, _ in discord.posts] == [item.id]
