"""Reviewer fatigue on the web console over HTTP: the opened → decided time, the
per-reviewer table on the dashboard (gold accuracy) and the daily cap."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlmodel import col, select

from bot.app import System, create_app
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage.models import Decision, Item
from tests.web.test_pages import sign_in

BODY = "Hi Jane, " + "we have looked into your order and refunded it in full. " * 36
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": BODY}
SHOULD_REJECT = {
    "kind": "email",
    "title": "Refund for order 7781",
    "content": {
        "to": ["sam@example.com"],
        "subject": "Your refund",
        "body": "Hi Sam, we have refunded 10,000 EUR for your 12 EUR order.",
    },
    "expected": "reject",
}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # pages are database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
def routes(tmp_path: Path) -> RouteTable:
    gold = tmp_path / "gold.yaml"
    gold.write_text(yaml.safe_dump([SHOULD_REJECT]))
    return parse_routes(
        {
            "routes": {
                "support": {"surfaces": [{"type": "web"}]},
                "golden": {"surfaces": [{"type": "web"}], "gold": {"file": str(gold), "rate": 1}},
                "capped": {"surfaces": [{"type": "web"}], "review": {"daily_cap": 1}},
            }
        }
    )


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as c:
        yield c


async def submit(system: System, integrator: Integrator, route: str) -> str:
    data = ItemCreate(route=route, kind="email", title="Refund", content=EMAIL)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def decision_of(system: System, item_id: str) -> Decision:
    async with system.sessions() as session:
        query = select(Decision).where(Decision.item_id == item_id)
        return (await session.exec(query)).one()


async def test_the_web_records_opened_to_decided(
    client: httpx.AsyncClient, system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    """Waited an hour in the inbox, approved five seconds after opening: a rubber stamp."""
    csrf = await sign_in(client, system, "ann", ["*"])
    item_id = await submit(system, integrator, "support")
    clock.advance(3600)
    assert (await client.get(f"/items/{item_id}")).status_code == 200
    clock.advance(3)
    assert (await client.get(f"/items/{item_id}")).status_code == 200  # a reload: same open
    assert (await client.get(f"/items/{item_id}/card")).status_code == 200  # a live refresh
    clock.advance(2)
    answer = await client.post(f"/items/{item_id}/decide", data={"action": "approve", "csrf": csrf})
    assert answer.status_code == 303
    decision = await decision_of(system, item_id)
    assert decision.since_posted_seconds == 3605 and decision.opened_seconds == 5
    assert decision.rubber_stamp is True


async def test_a_decision_without_opening_the_page_has_no_opened_time(
    client: httpx.AsyncClient, system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    csrf = await sign_in(client, system, "ann", ["*"])
    item_id = await submit(system, integrator, "support")
    clock.advance(600)
    await client.post(f"/items/{item_id}/decide", data={"action": "approve", "csrf": csrf})
    decision = await decision_of(system, item_id)
    assert decision.opened_seconds is None and decision.rubber_stamp is False


async def test_gold_accuracy_zero_shows_on_the_dashboard(
    client: httpx.AsyncClient, system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    assert system.gold is not None
    system.gold.rng = random.Random(3)
    csrf = await sign_in(client, system, "ann", ["*"])
    for _ in range(3):
        await submit(system, integrator, "golden")
    async with system.sessions() as session:
        query = select(Item.id).where(col(Item.gold_expected) == "reject")
        gold = list((await session.exec(query)).all())
    assert len(gold) == 3
    clock.advance(120)
    for item_id in gold:  # approves every gold item that should be rejected
        await client.get(f"/items/{item_id}")
        answer = await client.post(
            f"/items/{item_id}/decide", data={"action": "approve", "csrf": csrf}
        )
        assert answer.status_code == 303

    page = await client.get("/dashboard")
    assert page.status_code == 200
    row = re.search(r'<tr data-reviewer="web:ann">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row[1], re.S)
    ]
    # reviewer, surface, decisions, approval rate, median, stamps, gold graded, accuracy, today
    assert cells[:3] == ["ann", "web", "3"] and cells[3] == "100 %"
    assert cells[6:9] == ["3", "0 %", "3"]
    assert 'data-gold-accuracy="0.0"' in row[1]


async def test_the_dashboard_says_when_nobody_has_decided(
    client: httpx.AsyncClient, system: System
) -> None:
    await sign_in(client, system, "ann", ["*"])
    page = await client.get("/dashboard")
    assert "No reviewer decisions in the last 30 days." in page.text


async def test_a_capped_reviewer_is_told_on_the_web(
    client: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    csrf = await sign_in(client, system, "ann", ["*"])
    first = await submit(system, integrator, "capped")
    second = await submit(system, integrator, "capped")
    await client.post(f"/items/{first}/decide", data={"action": "approve", "csrf": csrf})
    refused = await client.post(f"/items/{second}/decide", data={"action": "approve", "csrf": csrf})
    assert refused.status_code == 403
    assert (
        "ann has reached the daily cap of 1 decisions on route &#39;capped&#39;; "
        "others will take it" in refused.text
    )
