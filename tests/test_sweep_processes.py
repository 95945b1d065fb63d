"""The sweep as separate ``signoff sweep --once`` processes against the Slack emulator:
two at once on one PostgreSQL database, and one killed in the middle of a sweep."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import System, build
from bot.auth import Integrator
from bot.card import ReviewCard
from bot.ports import DigestEntry
from bot.routes import load_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.slack import SlackEmulator
from tests.process import BIN, ROOT, signoff_env

TOKEN = "xoxb-sweep-test"


class EmulatorCards:
    """Posts plain cards straight to the emulator (no pacing), to seed many items fast;
    the processes under test then remind through the real Slack surface."""

    name = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any] | None:
        answer = await self._client.chat_postMessage(channel=channel or "", text=card.title)
        return {"channel": answer["channel"], "ts": answer["ts"]}

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        pass

    async def nudge(
        self,
        *,
        card: ReviewCard,
        ref: Mapping[str, Any],
        mentions: Sequence[str],
        text: str,
        key: str,
        check_first: bool = False,
    ) -> None:
        raise AssertionError("the seeding system never sweeps")

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[DigestEntry],
    ) -> None:
        raise AssertionError("the seeding system never sweeps")


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = await SlackEmulator().start()
    yield emulator
    await emulator.stop()


def world(
    tmp_path: Path, db_url: str, slack: SlackEmulator, routes: dict[str, Any]
) -> dict[str, str]:
    config = tmp_path / "signoff.yaml"
    config.write_text(json.dumps({"routes": routes}))
    return signoff_env(
        SIGNOFF_DATABASE_URL=db_url,
        SIGNOFF_CONFIG=str(config),
        SIGNOFF_SLACK_BOT_TOKEN=TOKEN,
        SIGNOFF_SLACK_SIGNING_SECRET="unused-here",
        SIGNOFF_SLACK_API_URL=slack.url,
        SIGNOFF_SWEEP_LEASE_SECONDS="5",
    )


async def seed(env: dict[str, str], slack: SlackEmulator, plan: dict[str, int]) -> list[str]:
    """Submit ``plan[route]`` items per route; return their ids."""
    settings = load_settings({k: v for k, v in env.items() if k.startswith("SIGNOFF_")})
    client = AsyncWebClient(token=TOKEN, base_url=slack.url)
    system: System = build(
        settings,
        routes=load_routes(settings.config, required=True),
        surfaces={"slack": EmulatorCards(client)},
    )
    await upgrade(system.engine)
    try:
        key = await system.keys.create(name="agent")
        integrator = await system.keys.authenticate(key.api_key)
        assert isinstance(integrator, Integrator)
        ids = []
        for route, count in plan.items():
            for n in range(count):
                data = ItemCreate(
                    route=route, kind="message", title=f"{route} {n}", content={"text": "hi"}
                )
                ids.append((await system.service.submit(integrator=integrator, data=data)).item.id)
        return ids
    finally:
        await system.close()


def sweeper(env: dict[str, str], at: datetime) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "signoff"), "sweep", "--once", "--json", "--now", at.isoformat()],
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def finished(proc: subprocess.Popen[str], *, within: float = 90) -> dict[str, int]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=within)
    assert proc.returncode == 0, err
    report: dict[str, int] = json.loads(out)
    return report


def replies(slack: SlackEmulator, channel: str) -> dict[str, list[dict[str, Any]]]:
    """Thread replies per parent message in ``channel``."""
    threads: dict[str, list[dict[str, Any]]] = {}
    for message in slack.messages[channel]:
        if message.get("thread_ts") is None:
            threads.setdefault(message["ts"], [])
    for message in slack.messages[channel]:
        if message.get("thread_ts") is not None:
            threads.setdefault(message["thread_ts"], []).append(message)
    return threads


async def test_two_processes_sweeping_one_postgres_fire_every_step_once(
    tmp_path: Path, pg_url: str, slack: SlackEmulator
) -> None:
    routes: dict[str, Any] = {
        f"team{n}": {
            "surfaces": [{"type": "slack", "channel": f"C0TEAM{n}"}],
            "reviewers": {"slack": [f"U0REV{n}"]},
            "escalation": [{"after": "30m", "do": "nudge"}],
        }
        for n in range(5)
    }
    routes["oncall"] = {
        "surfaces": [{"type": "slack", "channel": "C0ONCALL"}],
        "escalation": [
            {"after": "30m", "do": "escalate", "channel": "C0ESC", "mention": {"slack": ["S0SRE"]}}
        ],
    }
    env = world(tmp_path, pg_url, slack, routes)
    ids = await seed(env, slack, {**{f"team{n}": 4 for n in range(5)}, "oncall": 2})
    at = datetime.now(UTC) + timedelta(minutes=31)
    one, two = sweeper(env, at), sweeper(env, at)
    reports = [await finished(one), await finished(two)]
    assert sum(r["nudged"] for r in reports) == 20
    assert sum(r["escalated"] for r in reports) == 2
    for n in range(5):
        threads = replies(slack, f"C0TEAM{n}")
        assert len(threads) == 4
        assert [len(r) for r in threads.values()] == [1, 1, 1, 1]
        for [reply] in threads.values():
            assert reply["text"].startswith(f"<@U0REV{n}> Still waiting for review after 30 min")
    escalated = replies(slack, "C0ESC")
    assert len(escalated) == 2  # each card posted once to the escalation channel
    assert all(
        len(r) == 1 and r[0]["text"].startswith("<!subteam^S0SRE>") for r in escalated.values()
    )
    again = [await finished(sweeper(env, at)), await finished(sweeper(env, at))]
    assert all(r["nudged"] == r["escalated"] == 0 for r in again)
    assert len(ids) == 22


async def test_a_sweep_killed_mid_way_is_finished_by_the_next_with_no_repeats(
    tmp_path: Path, sqlite_url: str, slack: SlackEmulator
) -> None:
    routes = {
        "support": {
            "surfaces": [{"type": "slack", "channel": "C0SUPPORT"}],
            "reviewers": {"slack": ["U0ANN"]},
            "escalation": [{"after": "30m", "do": "nudge"}],
        }
    }
    env = world(tmp_path, sqlite_url, slack, routes)
    await seed(env, slack, {"support": 3})
    at = datetime.now(UTC) + timedelta(minutes=31)
    slack.hold("chat.postMessage")
    doomed = sweeper(env, at)
    try:
        await slack.wait_held("chat.postMessage", within=60)
        # Slack has posted the first reminder; the sweep dies before hearing back.
        os.killpg(doomed.pid, signal.SIGKILL)
    finally:
        await asyncio.to_thread(doomed.wait)
        slack.release("chat.postMessage")
    assert sum(len(r) for r in replies(slack, "C0SUPPORT").values()) == 1
    early = await finished(sweeper(env, at + timedelta(seconds=1)))
    assert early["nudged"] == 0 and early["recovered"] == 0  # the claims are still leased
    report = await finished(sweeper(env, at + timedelta(seconds=10)))
    assert report["recovered"] == 3
    threads = replies(slack, "C0SUPPORT")
    assert [len(r) for r in threads.values()] == [1, 1, 1]  # none lost, none repeated
    keys = {r[0]["metadata"]["event_payload"]["key"] for r in threads.values()}
    assert len(keys) == 3
    assert (await finished(sweeper(env, at + timedelta(minutes=5))))["nudged"] == 0
