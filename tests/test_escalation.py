"""Escalation config, due-time arithmetic, the APScheduler jobs, the daily digest,
metrics, the web history of steps, and ``signoff sweep --once``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.web.render import history
from bot.app import System, build, create_app
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.errors import ConfigError
from bot.escalation import WorkingHours, format_duration, parse_duration, plan
from bot.routes import RouteTable, parse_routes
from bot.scheduler import SWEEP_JOB, build_scheduler
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage import steps as step_store
from storage.migrate import upgrade
from tests.fakes.surface import RecordingSurface
from tests.process import run, signoff_env

MSG = {"text": "Ship it?"}


def route_with(**extra: Any) -> dict[str, Any]:
    return {"routes": {"r": {"surfaces": [{"type": "slack", "channel": "C1"}], **extra}}}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("4h", 14400), ("1d12h", 129600), ("2w", 1209600), (45, 45)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "30", "4 hours", "-1h", "0m", "1h30"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_durations_read_like_people_say_them() -> None:
    assert [format_duration(timedelta(minutes=m)) for m in (30, 120, 1440, 2160, 4320)] == [
        "30 min",
        "2 h",
        "24 h",
        "36 h",
        "3 d",
    ]


@pytest.mark.parametrize(
    ("escalation", "extra", "message"),
    [
        ([{"after": "soon", "do": "nudge"}], {}, "routes.r.escalation.0.after"),
        ([{"after": "1h", "do": "page"}], {}, "routes.r.escalation.0.do"),
        ([{"after": "1h", "do": "escalate"}], {}, "needs a channel, a mention, or both"),
        ([{"after": "1h", "do": "nudge", "on_expire": "reject"}], {}, "belongs to the expire"),
        ([{"after": "1h", "do": "expire", "on_expire": "later"}], {}, "on_expire"),
        (
            [{"after": "1h", "do": "expire"}, {"after": "2h", "do": "expire"}],
            {},
            "at most one expire step",
        ),
        ([{"after": "1h", "do": "nudge", "when": "x"}], {}, "escalation.0.when: unknown key"),
        ([], {"working_hours": {"timezone": "Mars/Olympus"}}, "unknown timezone 'Mars/Olympus'"),
        ([], {"working_hours": {"days": ["funday"]}}, "unknown day(s) funday"),
        ([], {"working_hours": {"start": "18:00", "end": "09:00"}}, "end must be after start"),
        ([], {"digest": {"threshold": 0}}, "routes.r.digest.threshold"),
    ],
)
def test_bad_escalation_config_names_the_key(
    escalation: list[dict[str, Any]], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_routes(route_with(escalation=escalation, **extra))
    assert message in str(err.value)


def test_an_escalation_channel_needs_a_platform_when_the_route_has_two() -> None:
    data = {
        "routes": {
            "r": {
                "surfaces": [
                    {"type": "slack", "channel": "C1"},
                    {"type": "discord", "channel": "1"},
                ],
                "escalation": [{"after": "4h", "do": "escalate", "channel": "C0ESC"}],
            }
        }
    }
    with pytest.raises(ConfigError, match=r"escalation\.0\.surface: say slack or discord"):
        parse_routes(data)
    data["routes"]["r"]["escalation"][0]["surface"] = "slack"
    route = parse_routes(data).get("r")
    assert route is not None and route.escalation_surface(route.escalation[0]) == "slack"


def test_working_hours_across_a_weekend_and_a_dst_change() -> None:
    hours = WorkingHours(timezone="Europe/Berlin", start=time(9), end=time(17))
    saturday_3am = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
    assert hours.next_working_minute(saturday_3am) == datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
    inside = datetime(2026, 1, 12, 10, 17, tzinfo=UTC)
    assert hours.next_working_minute(inside) == inside
    friday_evening = datetime(2026, 3, 27, 17, 0, tzinfo=UTC)  # 18:00 CET; DST starts Sunday
    assert hours.next_working_minute(friday_evening) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_shifted_steps_fire_in_due_order_and_expiry_keeps_wall_clock() -> None:
    route = parse_routes(
        route_with(
            escalation=[
                {"after": "1h", "do": "nudge"},
                {"after": "20h", "do": "expire"},
            ],
            working_hours={"timezone": "UTC", "start": "09:00", "end": "17:00"},
        )
    ).get("r")
    assert route is not None
    friday_4pm = datetime(2026, 1, 9, 16, 30, tzinfo=UTC)
    chain = plan(route.escalation, posted_at=friday_4pm, hours=route.working_hours)
    # the nudge waits for Monday; the expiry (wall clock) comes first, on Saturday
    assert [(p.index, p.due) for p in chain] == [
        (1, datetime(2026, 1, 10, 12, 30, tzinfo=UTC)),
        (0, datetime(2026, 1, 12, 9, 0, tzinfo=UTC)),
    ]
    in_hours = plan(
        route.escalation,
        posted_at=friday_4pm,
        hours=route.working_hours,
        expire_in_working_hours=True,
    )
    assert [p.index for p in in_hours] == [0, 1]  # both wait for Monday 09:00


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "support": {
                    "surfaces": [{"type": "slack", "channel": "C1"}],
                    "escalation": [
                        {"after": "30m", "do": "nudge"},
                        {"after": "8h", "do": "expire"},
                    ],
                    "digest": {"daily_at": "09:00", "expiring_within": "4h"},
                    "working_hours": {"timezone": "America/New_York"},
                },
                "quiet": {"surfaces": [{"type": "slack", "channel": "C2"}]},
            }
        }
    )


@pytest.fixture
def slack() -> RecordingSurface:
    return RecordingSurface(name="slack")


@pytest.fixture
async def system(
    sqlite_url: str, routes: RouteTable, clock: FrozenClock, slack: RecordingSurface
) -> AsyncIterator[System]:
    sys_ = build(
        load_settings({"SIGNOFF_DATABASE_URL": sqlite_url, "SIGNOFF_SWEEP_INTERVAL_SECONDS": "15"}),
        clock=clock,
        routes=routes,
        surfaces={"slack": slack},
    )
    await upgrade(sys_.engine)
    try:
        yield sys_
    finally:
        await sys_.close()


@pytest.fixture
async def integrator(system: System) -> Integrator:
    key = await system.keys.create(name="agent")
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    return found


async def submit(system: System, integrator: Integrator, title: str = "Ship it") -> str:
    data = ItemCreate(route="support", kind="message", title=title, content=MSG)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


def test_the_scheduler_has_one_coalesced_sweep_and_a_daily_digest_per_route(
    system: System, routes: RouteTable
) -> None:
    scheduler = build_scheduler(
        sweeper=system.sweeper, daily=system.daily, routes=routes, interval_seconds=15
    )
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {SWEEP_JOB, "daily-digest:support"}
    sweep = jobs[SWEEP_JOB]
    assert sweep.coalesce is True and sweep.max_instances == 1
    assert sweep.trigger.interval == timedelta(seconds=15)
    digest = jobs["daily-digest:support"]
    assert digest.coalesce is True and digest.max_instances == 1
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York: today's has passed
    fire = digest.trigger.get_next_fire_time(None, now)
    assert fire.astimezone(UTC) == datetime(2026, 1, 6, 14, 0, tzinfo=UTC)  # 09:00 EST
    without = build_scheduler(
        sweeper=system.sweeper, daily=system.daily, routes=routes, interval_seconds=15, sweep=False
    )
    assert [job.id for job in without.get_jobs()] == ["daily-digest:support"]


async def test_the_daily_digest_lists_pending_oldest_first_and_posts_once_a_day(
    system: System, integrator: Integrator, clock: FrozenClock, slack: RecordingSurface
) -> None:
    assert await system.daily.run(route_name="support") is False  # nothing pending: quiet
    old = await submit(system, integrator, "Old one")
    clock.advance(timedelta(hours=5))
    new = await submit(system, integrator, "New one")
    clock.advance(timedelta(minutes=10))
    assert await system.daily.run(route_name="support") is True
    [digest] = slack.announcements
    assert digest.channel == "C1" and digest.mentions == []
    assert [e.item_id for e in digest.entries] == [old, new]
    assert digest.heading == (
        "Daily digest for support: 2 pending, 1 expiring within 4 h (oldest first):"
    )
    assert digest.entries[0].note == "waiting 5 h · expires in 3 h"
    assert digest.entries[1].note == "waiting 10 min"
    assert await system.daily.run(route_name="support") is False  # another replica, same day
    clock.advance(timedelta(days=1))
    assert await system.daily.run(route_name="support") is True
    assert len(slack.announcements) == 2


async def test_metrics_count_steps_by_route_and_action(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    await submit(system, integrator)
    await submit(system, integrator)
    clock.advance(timedelta(hours=5))  # 09:00 in New York: the nudge's first working minute
    await system.sweeper.run_once()
    clock.advance(timedelta(hours=3))  # 8 h after posting: expiry counts wall-clock time
    await system.sweeper.run_once()
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://signoff"
    ) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert "# TYPE signoff_escalation_steps_total counter" in lines
    assert 'signoff_escalation_steps_total{route="support",action="nudge",state="done"} 2' in lines
    assert 'signoff_escalation_steps_total{route="support",action="expire",state="done"} 2' in lines
    assert 'signoff_items{route="support",state="expired"} 2' in lines


async def test_the_web_history_shows_reminders_but_not_the_expiry_twice(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator)
    clock.advance(timedelta(hours=5))  # 09:00 in New York: the nudge's first working minute
    await system.sweeper.run_once()
    clock.advance(timedelta(hours=3))  # 8 h after posting: expiry counts wall-clock time
    await system.sweeper.run_once()
    item = await system.reader.get(item_id=item_id)
    async with system.sessions() as session:
        runs = await step_store.runs_for(session, item_id=item_id)
    entries = [(e.who, e.what, e.detail) for e in history(item, [], runs)]
    assert entries == [
        ("integrator", "submitted", "Ship it"),
        ("scheduler", "reminder", "reminded on slack C1"),
        ("policy", "expired", "reject: after 8 h — rejected by policy"),
    ]
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://signoff"
    ) as client:
        link = await system.web.auth.invite(name="rita", routes=["*"])
        assert (await client.post(link.split("127.0.0.1:8000", 1)[1])).status_code == 303
        page = (await client.get(f"/items/{item_id}")).text
    assert "reminded on slack C1" in page
    assert page.index("reminded on slack C1") < page.index("after 8 h — rejected by policy")


def test_sweep_once_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "signoff.yaml"
    config.write_text(
        json.dumps(
            {
                "routes": {
                    "default": {"escalation": [{"after": "30m", "do": "expire"}]},
                }
            }
        )
    )
    env = signoff_env(
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
        SIGNOFF_CONFIG=str(config),
    )
    item = {"route": "default", "kind": "message", "title": "t", "content": {"text": "x"}}
    made = run(["submit", "-", "--json"], env=env, stdin=json.dumps(item))
    assert made.returncode == 0, made.stderr
    item_id = json.loads(made.stdout)["id"]
    now = datetime.now(UTC)
    early = run(["sweep", "--once", "--now", now.isoformat()], env=env)
    assert early.returncode == 0, early.stderr
    assert early.stdout.startswith("nudged 0, in digests 0 (0 digests), escalated 0, expired 0")
    later = (now + timedelta(minutes=31)).isoformat()
    done = run(["sweep", "--once", "--now", later, "--json"], env=env)
    assert json.loads(done.stdout)["expired"] == 1
    assert item_id in run(["items"], env=env).stdout
    assert "expired" in run(["items"], env=env).stdout
    bad = run(["sweep", "--once", "--now", "2026-01-05 09:00"], env=env)
    assert bad.returncode == 2 and "--now: give a UTC offset" in bad.stderr
    noflag = run(["sweep"], env=env)
    assert noflag.returncode == 2 and "use --once" in noflag.stderr


def test_the_readme_route_example_is_a_valid_route_file() -> None:
    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Routes")[1].split("```yaml")[1].split("```")[0]
    route = parse_routes(yaml.safe_load(block)).get("support-emails")
    assert route is not None
    assert [step.do for step in route.escalation] == ["nudge", "nudge", "escalate", "expire"]
    assert route.working_hours is not None and route.working_hours.timezone == "Europe/Berlin"
