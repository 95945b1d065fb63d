"""One-click buttons in the web console: a comparison's verdicts and a label item's
labels, over HTTP with sign-in and CSRF, and a comparison clicked in headless Chromium."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from bot.app import System, create_app
from bot.auth import Integrator
from bot.schemas import ItemCreate
from tests.web.conftest import ARTIFACTS, Live
from tests.web.test_browser import signed_in
from tests.web.test_pages import sign_in

PAIR = {"prompt": "Greet Jane", "a": "Hi Jane.", "b": "Hello Jane!"}


class Swapped(random.Random):
    def random(self) -> float:  # every comparison shows b first, as "A"
        return 0.0


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # pages are database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as c:
        yield c


async def submit(system: System, integrator: Integrator, kind: str, content: Any) -> str:
    data = ItemCreate(route="support", kind=kind, title="Pick one", content=content)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


def forms(html: str) -> list[dict[str, str]]:
    """The hidden verb/value of each one-click form on the page."""
    return [
        dict(re.findall(r'name="(verb|value)" value="([^"]*)"', form))
        for form in re.findall(r'<form[^>]*action="/items/[^"]+/choose".*?</form>', html, re.S)
    ]


async def test_a_comparison_shows_a_and_b_and_a_click_records_the_candidate(
    client: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    system.service.ab_rng = Swapped()
    item_id = await submit(system, integrator, "comparison", PAIR)
    csrf = await sign_in(client, system, "ann", ["support"])
    page = (await client.get(f"/items/{item_id}")).text
    shown = re.findall(
        r'<section class="shown"><h2>(\w+)</h2><pre class="body">([^<]*)</pre>', page
    )
    assert shown == [("Prompt", "Greet Jane"), ("A", "Hello Jane!"), ("B", "Hi Jane.")]
    assert forms(page) == [{"verb": "choose", "value": v} for v in ("A", "B", "tie", "both_bad")]
    assert 'id="approve"' not in page and "swap" not in page.lower()

    refused = await client.post(
        f"/items/{item_id}/choose", data={"verb": "choose", "value": "A", "csrf": "forged"}
    )
    assert refused.status_code == 403 and "CSRF" in refused.text
    bad = await client.post(
        f"/items/{item_id}/choose", data={"verb": "choose", "value": "C", "csrf": csrf}
    )
    assert bad.status_code == 422 and "&#39;C&#39; is not a comparison verdict" in bad.text
    done = await client.post(
        f"/items/{item_id}/choose", data={"verb": "choose", "value": "A", "csrf": csrf}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/items/{item_id}"
    item = await system.reader.get(item_id=item_id)
    assert item.decisions[-1].choice == "b" and item.decisions[-1].actor_name == "ann"
    assert item.final_content == {"prompt": "Greet Jane", "winner": "b", "text": "Hello Jane!"}
    after = (await client.get(f"/items/{item_id}")).text
    assert forms(after) == [] and "Hello Jane!" in after and "Hi Jane." in after


async def test_a_label_click_decides_with_that_label(
    client: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    labels = {"text": "Where is my money?", "labels": ["billing", "refund", "spam"]}
    item_id = await submit(system, integrator, "label", labels)
    csrf = await sign_in(client, system, "ann", ["support"])
    page = (await client.get(f"/items/{item_id}")).text
    assert forms(page) == [{"verb": "label", "value": str(n)} for n in range(3)]
    assert 'id="label-2">spam</button>' in page and 'id="approve"' in page
    answer = await client.post(
        f"/items/{item_id}/choose", data={"verb": "label", "value": "2", "csrf": csrf}
    )
    assert answer.status_code == 303
    item = await system.reader.get(item_id=item_id)
    assert item.outcome == "edited" and item.final_content is not None
    assert item.final_content["labels"] == ["spam"]
    again = await client.post(
        f"/items/{item_id}/choose", data={"verb": "label", "value": "0", "csrf": csrf}
    )
    assert again.status_code == 409 and "Already edited and approved by ann" in again.text


async def test_a_comparison_clicked_in_a_browser(browser: Browser, live: Live) -> None:
    live.system.service.ab_rng = Swapped()
    data = ItemCreate(route="support", kind="comparison", title="Which greeting?", content=PAIR)
    item = (await live.system.service.submit(integrator=live.integrator, data=data)).item
    page = await signed_in(browser, live)
    await page.click(f'tr[data-id="{item.id}"] a')
    await expect(page.locator(".comparison .shown").nth(1)).to_contain_text("Hello Jane!")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "item-comparison.png", full_page=True)
    await page.click("#choose-B")
    await expect(page.locator("#state")).to_have_text("approved")
    decided = await live.system.reader.get(item_id=item.id)
    assert decided.decisions[-1].choice == "a" and decided.decisions[-1].actor_name == "rita"
