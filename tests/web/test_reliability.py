"""Calibration on the web dashboard: a reliability plot per route, with the thresholds in
force and recommended."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.web.reliability import reliability_plot
from bot.app import System, create_app
from bot.calibration import calibration_report
from bot.routes import RouteTable, parse_routes
from tests.test_calibration import seed
from tests.web.test_pages import sign_in


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # pages are database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "support": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.97, "auto_reject_below": 0.05},
                    "drift": {"target_error": 0.05},
                },
                "fresh": {"surfaces": [{"type": "web"}]},
            }
        }
    )


@pytest.fixture
async def web(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


async def test_the_dashboard_plots_reliability_per_route(
    web: httpx.AsyncClient, system: System
) -> None:
    await seed(system)
    await sign_in(web, system, "rita", ["support", "fresh"])
    page = (await web.get("/dashboard")).text
    section = page[page.index('id="calibration"') :]
    [svg] = re.findall(r"<svg[^>]*chart-reliability.*?</svg>", section, re.S)
    assert svg.count('<g class="chart-point">') == 10  # every band has verdicts
    assert "[0.9, 1.0]: 1,044 of 1,100 acceptable (94.9%)" in svg
    assert svg.count('class="chart-threshold"') == 2  # 0.97 and 0.05 in force
    assert "Reliability of fresh" not in section  # no verdicts: no plot
    assert "Recommended (target error 5.0 %)" in section
    assert ">0.93</td>" in section and ">0.97</td>" in section


async def test_the_plot_is_empty_without_verdicts(system: System) -> None:
    route = system.routes.get("fresh")
    assert route is not None
    report = await calibration_report(system.sessions, route=route, target_error=0.01)
    svg = str(reliability_plot(report))
    assert "No data yet" in svg and "<circle" not in svg
