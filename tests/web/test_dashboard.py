"""The dashboard on SQLite and PostgreSQL: its numbers, its scope, its SVG and template."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader

from adapters.web.charts import bar_chart, stacked_bars
from adapters.web.dashboard import (
    OUTCOMES,
    Dashboard,
    DayCounts,
    RouteRates,
    dashboard_data,
    format_duration,
    percentile,
    render_context,
    window,
)
from bot.app import System
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.ports import Actor
from bot.schemas import ItemCreate

TEMPLATES = Path(__file__).resolve().parents[2] / "adapters" / "web" / "templates"
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
EVIL = "<script>alert(1)</script>"
SVG_NS = "{http://www.w3.org/2000/svg}"


def web(name: str) -> Actor:
    return Actor(surface="web", user_id=name, name=name)


async def submit(
    system: System, integrator: Integrator, route: str, confidence: float | None = 0.5
) -> str:
    data = ItemCreate(
        route=route, kind="email", title="Refund", content=EMAIL, confidence=confidence
    )
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def seed(system: System, integrator: Integrator, clock: FrozenClock) -> None:
    """Monday 5 Jan 2026 (the clock's start) and Tuesday 6 Jan, UTC:

    - Jan 5: support approved after 60 s, edited after 240 s, one auto-approved and
      one auto-rejected;
    - Jan 6: support rejected after 600 s; pair approved by two after 1800 s;
    - left pending: two on support, one on pair (one of two approvals), one on strict.
    """
    item = await submit(system, integrator, "support")
    clock.advance(60)
    await system.service.decide(item_id=item, action="approve", actor=web("ann"))
    item = await submit(system, integrator, "support")
    clock.advance(240)
    await system.service.decide(
        item_id=item, action="edit", actor=web("ann"), content={"body": "Hi Jane, sorry!"}
    )
    await submit(system, integrator, "support", confidence=0.995)
    await submit(system, integrator, "support", confidence=0.1)

    clock.advance(timedelta(days=1))
    item = await submit(system, integrator, "support")
    clock.advance(600)
    await system.service.decide(
        item_id=item, action="reject", actor=web("bob"), reason_code="wrong facts"
    )
    item = await submit(system, integrator, "pair")
    clock.advance(1200)
    await system.service.decide(item_id=item, action="approve", actor=web("ann"))
    clock.advance(600)
    await system.service.decide(item_id=item, action="approve", actor=web("bob"))

    await submit(system, integrator, "support")
    await submit(system, integrator, "support")
    half = await submit(system, integrator, "pair")
    await system.service.decide(item_id=half, action="approve", actor=web("ann"))
    await submit(system, integrator, "strict")


def zero(**counts: int) -> dict[str, int]:
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


async def test_numbers_for_every_route(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    await seed(system, integrator, clock)
    dash = await dashboard_data(system.sessions, routes=None, now=clock.now())

    assert dash.queue_depth == {"pair": 1, "strict": 1, "support": 2}
    assert dash.queue_total == 4

    assert len(dash.per_day) == 14 and dash.days == 14
    assert dash.per_day[0].day == date(2025, 12, 24)
    assert dash.per_day[-1].day == date(2026, 1, 6)
    assert dash.per_day[-2].counts == zero(approved=1, edited=1, auto_approved=1, auto_rejected=1)
    assert dash.per_day[-1].counts == zero(approved=1, rejected=1)
    assert all(day.counts == zero() for day in dash.per_day[:-2])
    assert dash.decided_total == 6

    # human waits 60, 240, 600, 1800 s; nearest rank: p50 = 2nd, p90 = 4th
    assert dash.human_decisions == 4
    assert (dash.p50_seconds, dash.p90_seconds) == (240.0, 1800.0)
    assert (dash.p50_text, dash.p90_text) == ("4 min", "30 min")

    rates = {r.route: r for r in dash.rates}
    assert list(rates) == ["pair", "support"]
    support = rates["support"]
    assert (support.approved, support.edited, support.rejected) == (1, 1, 1)
    assert (support.auto_approved, support.auto_rejected, support.expired) == (1, 1, 0)
    assert support.human == 3
    assert support.share("approved") == pytest.approx(1 / 3)
    assert support.share_text("rejected") == "33 %"
    assert rates["pair"].share("approved") == 1.0 and rates["pair"].share("edited") == 0.0
    assert dash.release_failures == {} and dash.release_failures_total == 0


async def test_a_reviewer_sees_only_their_routes(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    await seed(system, integrator, clock)

    pair = await dashboard_data(system.sessions, routes=["pair"], now=clock.now())
    assert pair.routes == ("pair",)
    assert pair.queue_depth == {"pair": 1}
    assert pair.per_day[-1].counts == zero(approved=1)
    assert pair.per_day[-2].counts == zero()
    assert (pair.p50_seconds, pair.p90_seconds) == (1800.0, 1800.0)
    assert [r.route for r in pair.rates] == ["pair"]

    strict = await dashboard_data(system.sessions, routes=["strict", "selfok"], now=clock.now())
    assert strict.queue_depth == {"selfok": 0, "strict": 1}  # scoped routes zero-filled
    assert strict.decided_total == 0 and strict.p50_seconds is None
    assert strict.p50_text == "\N{EM DASH}"
    assert [r.route for r in strict.rates] == ["selfok", "strict"]
    assert strict.rates[1].share("approved") is None
    assert strict.rates[1].share_text("approved") == "\N{EM DASH}"

    nothing = await dashboard_data(system.sessions, routes=[], now=clock.now())
    assert nothing.queue_depth == {} and nothing.rates == () and nothing.decided_total == 0


async def test_the_window_bounds_what_is_counted(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    await seed(system, integrator, clock)
    one = await dashboard_data(system.sessions, routes=None, now=clock.now(), days=1)
    assert [d.day for d in one.per_day] == [date(2026, 1, 6)]
    assert one.decided_total == 2 and one.human_decisions == 2
    assert (one.p50_seconds, one.p90_seconds) == (600.0, 1800.0)
    assert one.queue_depth == {"pair": 1, "strict": 1, "support": 2}  # now, not windowed

    later = await dashboard_data(system.sessions, routes=None, now=clock.now() + timedelta(days=30))
    assert later.decided_total == 0 and later.rates == () and later.p90_seconds is None
    assert later.queue_total == 4


async def test_release_failures_per_route(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item = await submit(system, integrator, "support")  # releases to 127.0.0.1:9: refused
    await system.service.decide(item_id=item, action="approve", actor=web("ann"))
    for _ in range(8):
        await system.worker.run_once()
        clock.advance(timedelta(hours=2))
    assert (await system.reader.get(item_id=item)).release_state == "failed"

    dash = await dashboard_data(system.sessions, routes=None, now=clock.now())
    assert dash.release_failures == {"support": 1} and dash.release_failures_total == 1
    scoped = await dashboard_data(system.sessions, routes=["pair"], now=clock.now())
    assert scoped.release_failures == {}


async def test_an_empty_database(system: System, clock: FrozenClock) -> None:
    dash = await dashboard_data(system.sessions, routes=None, now=clock.now())
    assert dash.queue_depth == {} and dash.rates == () and dash.release_failures == {}
    assert all(day.total == 0 for day in dash.per_day)
    assert dash.p50_seconds is None and dash.p90_seconds is None
    charts: Any = render_context(dash)["charts"]
    assert set(charts) == {"queue_depth", "decisions_per_day", "release_failures"}
    assert all("No data yet" in str(svg) for svg in charts.values())


# -- pure parts -----------------------------------------------------------------------


def test_nearest_rank_percentile() -> None:
    assert percentile([], pct=50) is None
    assert percentile([7.0], pct=90) == 7.0
    tens = [float(n) for n in range(10, 0, -1)]
    assert percentile(tens, pct=50) == 5.0 and percentile(tens, pct=90) == 9.0
    assert percentile(tens, pct=100) == 10.0 and percentile(tens, pct=1) == 1.0
    with pytest.raises(ValueError):
        percentile(tens, pct=0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "\N{EM DASH}"),
        (0, "0 s"),
        (45, "45 s"),
        (240, "4 min"),
        (150, "2.5 min"),
        (45 * 60, "45 min"),
        (9000, "2.5 h"),
        (20 * 3600, "20 h"),
        (3 * 86400, "3 d"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_window_is_whole_utc_days() -> None:
    since, until = window(now=datetime(2026, 1, 6, 23, 59, tzinfo=UTC), days=14)
    assert since == datetime(2025, 12, 24, tzinfo=UTC)
    assert until == datetime(2026, 1, 7, tzinfo=UTC)
    with pytest.raises(ValueError):
        window(now=datetime(2026, 1, 6), days=14)
    with pytest.raises(ValueError):
        window(now=datetime(2026, 1, 6, tzinfo=UTC), days=0)
    with pytest.raises(ValueError):
        window(now=datetime(2026, 1, 6, tzinfo=UTC), days=1000)


def parse(svg: object) -> ET.Element:
    root = ET.fromstring(str(svg))  # well-formed XML, or this raises
    assert root.tag == f"{SVG_NS}svg" and root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.find(f"{SVG_NS}title") is not None
    assert root.get("style") is None
    return root


def test_bar_chart_escapes_labels() -> None:
    svg = bar_chart(values={EVIL: 3, "a&b": 1.5, "zero": 0}, title=f"Queue {EVIL}")
    text = str(svg)
    assert "<script" not in text and "&lt;script&gt;" in text and "a&amp;b" in text
    root = parse(svg)
    assert root.findtext(f"{SVG_NS}title") == f"Queue {EVIL}"
    bars = root.findall(f".//{SVG_NS}rect")
    assert [bar.get("width") for bar in bars] == ["274", "137", "0"]
    assert [t.text for t in root.iter(f"{SVG_NS}text")][-1] == "0"
    assert "style=" not in text


def test_stacked_bars_escape_and_stack() -> None:
    svg = stacked_bars(
        days=["Jan 5", EVIL],
        series={"Approved": [2, 1], EVIL: [2, 0]},
        colors={"Approved": "#2e7d32", EVIL: '"><script>'},
        title="Decisions",
    )
    text = str(svg)
    assert "<script" not in text and "&lt;script&gt;" in text
    root = parse(svg)
    segments = root.findall(f".//{SVG_NS}rect[@class='chart-segment']")
    assert [s.get("height") for s in segments] == ["80", "80", "40"]  # 4 is full height
    legend = [t.text for t in root.findall(f".//{SVG_NS}g[@class='chart-legend']/{SVG_NS}text")]
    assert legend == ["Approved", "<script>alert(1)</scr…"]


def test_charts_without_data_say_so() -> None:
    for svg in (
        bar_chart(values={}, title="Queue"),
        stacked_bars(days=[], series={}, colors={}, title="Decisions"),
        stacked_bars(days=["Jan 5"], series={"Approved": [0]}, colors={}, title="Decisions"),
    ):
        root = parse(svg)
        assert root.find(f"{SVG_NS}text[@class='chart-empty']") is not None
        assert "No data yet" in str(svg)
    with pytest.raises(ValueError, match="1 values for 2 days"):
        stacked_bars(days=["a", "b"], series={"x": [1]}, colors={}, title="t")


# -- the template ---------------------------------------------------------------------


@dataclass
class User:
    name: str


def render(dash: Dashboard) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    context = render_context(dash)
    return env.get_template("dashboard.html").render(
        **context, user=User(name="ann"), csrf="x", nav="dashboard"
    )


async def test_the_template_renders(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    await seed(system, integrator, clock)
    dash = await dashboard_data(system.sessions, routes=None, now=clock.now())
    html = render(dash)
    assert "<title>Dashboard · signoff</title>" in html
    assert 'data-page="dashboard"' in html
    assert '<a href="/dashboard" aria-current="page">Dashboard</a>' in html
    assert '<link rel="stylesheet" href="/static/dashboard.css">' in html
    assert html.count("<svg ") == 2  # no failed release: its chart is left out
    assert "4 min" in html and "30 min" in html
    assert "33 %" in html and "No failed releases" in html
    assert "style=" not in html and "<script>" not in html.split("</head>")[1]


def test_the_template_escapes_route_names() -> None:
    day = date(2026, 1, 5)
    dash = Dashboard(
        routes=(EVIL,),
        since=datetime(2026, 1, 5, tzinfo=UTC),
        until=datetime(2026, 1, 6, tzinfo=UTC),
        queue_depth={EVIL: 2},
        per_day=(DayCounts(day=day, counts=zero(approved=1)),),
        p50_seconds=90.0,
        p90_seconds=9000.0,
        human_decisions=1,
        rates=(RouteRates(route=EVIL, approved=1),),
        release_failures={EVIL: 1},
    )
    html = render(dash)
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "1.5 min" in html and "2.5 h" in html and "100 %" in html
    assert html.count("<svg ") == 3
