"""Reject and redraft in the web inbox: the panel, the form through the decide handler,
the page while the next revision is drafted and after (revision 2, revision 1 with its
reason, machine-written notes). The real OpenAI client against the loopback OpenAI fake."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import System, build, create_app
from bot.auth import Integrator
from bot.ports import Actor
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.drafted import (
    FIRST,
    PRICES,
    SECOND,
    drafted_item,
    drafting_route,
    openai_env,
    redrafted,
    said_to_model,
)
from tests.fakes.openai import OpenAIFake
from tests.web.test_pages import sign_in

SUMMARY = {"summary": "Tells Jane order 1234 was refunded.", "risky_spots": []}
PANEL = 'id="redraft"'


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake() as fake:
        yield fake


@pytest.fixture
async def system(tmp_path: Path, fake: OpenAIFake) -> AsyncIterator[System]:
    routes = parse_routes(
        {
            "prices": PRICES,
            "routes": {
                # long drafts get a machine-written summary for the reviewer
                "support": drafting_route(llm={"max_revisions": 3, "aids": {"min_chars": 10}}),
                "brief": drafting_route(llm={"max_revisions": 2}),
                "plain": {},
            },
        }
    )
    settings = load_settings(
        {"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db", **openai_env(fake)}
    )
    system = build(settings, routes=routes)
    await upgrade(system.engine)
    try:
        yield system
    finally:
        await system.close()


@pytest.fixture
async def integrator(system: System) -> Integrator:
    key = await system.keys.create(name="agent")
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    return found


@pytest.fixture
async def web(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


async def page(web: httpx.AsyncClient, item_id: str) -> str:
    answer = await web.get(f"/items/{item_id}")
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


async def test_reject_and_redraft_from_the_web_shows_revision_2_and_revision_1_with_its_reason(
    web: httpx.AsyncClient, system: System, integrator: Integrator, fake: OpenAIFake
) -> None:
    fake.answer(FIRST).answer(SUMMARY).answer(SECOND)
    item_id = await drafted_item(system, integrator, route="support")
    csrf = await sign_in(web, system, "ann", ["*"])
    shown = await page(web, item_id)
    assert PANEL in shown and "What should the next draft do differently?" in shown
    assert 'name="action" value="redraft"' in shown
    assert "Summary (machine-written)" in shown and SUMMARY["summary"] in shown

    # no reason: refused with the form's page, naming what is missing
    empty = await web.post(f"/items/{item_id}/decide", data={"csrf": csrf, "action": "redraft"})
    assert empty.status_code == 422 and "needs a reason" in empty.text
    assert (await system.reader.get(item_id=item_id)).decisions == []

    # held here, so the page can be seen while the next revision is being drafted
    system.service.decider._on_redraft = lambda _: None
    reason = "warmer, and say sorry for the wait"
    sent = await web.post(
        f"/items/{item_id}/decide",
        data={
            "csrf": csrf,
            "action": "redraft",
            "reason_code": "wrong tone",
            "reason_text": reason,
        },
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/items/{item_id}"
    waiting = await page(web, item_id)
    assert "Revision 1 rejected by ann; drafting revision 2…" in waiting
    assert 'id="approve"' not in waiting and PANEL not in waiting
    assert system.redrafter is not None
    system.redrafter.start(item_id)
    await redrafted(system)

    said = said_to_model(fake, 2)
    assert reason in said and "wrong tone" in said and "refunded order 1234 in full" in said
    after = await page(web, item_id)
    assert "revision 2 of 3" in after and SECOND["body"] in after
    assert f"Revision 1, rejected by ann: wrong tone: {reason}" in after
    assert "we have refunded order 1234 in full." in after  # revision 1, kept
    history = f'rejected and asked for a redraft: <span class="detail">wrong tone: {reason}<'
    assert history in after
    assert PANEL in after  # 2 of 3: one more is allowed

    approved = await web.post(f"/items/{item_id}/decide", data={"csrf": csrf, "action": "approve"})
    assert approved.status_code == 303
    item = await system.reader.get(item_id=item_id)
    assert (item.state, item.revision, item.content["body"]) == ("approved", 2, SECOND["body"])


async def test_no_redraft_panel_at_the_last_revision_or_where_the_route_allows_none(
    web: httpx.AsyncClient, system: System, integrator: Integrator, fake: OpenAIFake
) -> None:
    fake.answer(FIRST).answer(SECOND).answer(FIRST)
    item_id = await drafted_item(system, integrator, route="brief")
    csrf = await sign_in(web, system, "ann", ["*"])
    await system.service.decide(
        item_id=item_id,
        action="redraft",
        actor=Actor(surface="slack", user_id="U1", name="sam"),
        reason_text="warmer",
    )
    await redrafted(system)
    last = await page(web, item_id)
    assert "revision 2 of 2" in last and 'id="confirm-reject"' in last and PANEL not in last
    refused = await web.post(
        f"/items/{item_id}/decide", data={"csrf": csrf, "action": "redraft", "reason_text": "x"}
    )
    assert refused.status_code == 422 and "the last of the 2" in html.unescape(refused.text)

    plain_task = await drafted_item(system, integrator, route="plain")
    submitted = await system.service.submit(
        integrator=integrator,
        data=ItemCreate(
            route="brief",
            kind="email",
            title="Not drafted",
            content={k: v for k, v in FIRST.items() if v is not None},
        ),
    )
    for other in (plain_task, submitted.item.id):
        shown = await page(web, other)
        assert 'id="confirm-reject"' in shown and PANEL not in shown
