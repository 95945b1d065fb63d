"""A failed release in the web console over HTTP: the alert, the Retry form and who may
use it (a session, its CSRF token, a reviewer of the item's route)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from bot.app import System, create_app
from bot.auth import Integrator
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from tests.fakes.receiver import Receiver
from tests.web.conftest import Live
from tests.web.test_browser import signed_in
from tests.web.test_pages import sign_in

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi"}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # pages are database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def routes(receiver: Receiver) -> RouteTable:
    hook = {"type": "webhook", "url": f"{receiver.url}/release"}
    return parse_routes(
        {
            "routes": {
                "ship": {
                    "target": hook,
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                },
                "other": {
                    "target": hook,
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                },
            }
        }
    )


@pytest.fixture
async def clients(system: System) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two browsers (separate cookie jars) on one app."""
    app = create_app(system, migrate=False, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://signoff") as one,
        httpx.AsyncClient(transport=transport, base_url="http://signoff") as two,
    ):
        yield one, two


async def failed_release(system: System, integrator: Integrator, receiver: Receiver) -> str:
    """An approved item of route ship whose release the target refused (HTTP 400)."""
    data = ItemCreate(route="ship", kind="email", title="Refund", content=EMAIL)
    item = (await system.service.submit(integrator=integrator, data=data)).item
    await system.service.decide(
        item_id=item.id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
    )
    receiver.then = 400  # a refusal: the worker does not try again
    assert await system.worker.run_once() == 1
    assert (await system.reader.get(item_id=item.id)).release_state == "failed"
    return item.id


async def release_state(system: System, item_id: str) -> str:
    return (await system.reader.get(item_id=item_id)).release_state


async def test_the_item_page_shows_the_failure_and_retry_releases_with_the_same_key(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    system: System,
    integrator: Integrator,
    receiver: Receiver,
) -> None:
    browser, _ = clients
    item_id = await failed_release(system, integrator, receiver)
    csrf = await sign_in(browser, system, "ann", ["ship"])
    for path in (f"/items/{item_id}", f"/items/{item_id}/card"):  # the page, the live partial
        page = await browser.get(path)
        assert page.status_code == 200
        assert 'role="alert"' in page.text and "Release failed: POST " in page.text
        assert "HTTP 400" in page.text
        assert f'action="/items/{item_id}/retry"' in page.text and 'id="retry"' in page.text

    receiver.then = 200
    answer = await browser.post(f"/items/{item_id}/retry", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == f"/items/{item_id}"
    assert await release_state(system, item_id) == "queued"
    page = await browser.get(f"/items/{item_id}")
    assert "Release failed" not in page.text and f"/items/{item_id}/retry" not in page.text

    assert await system.worker.run_once() == 1
    assert await release_state(system, item_id) == "released"
    releases = [r for r in receiver.received if r.path == "/release"]
    assert [r.status for r in releases] == [400, 200]
    assert {r.headers["Idempotency-Key"] for r in releases} == {f"{item_id}:release"}

    again = await browser.post(f"/items/{item_id}/retry", data={"csrf": csrf})
    assert again.status_code == 409 and "not failed" in again.text
    assert await release_state(system, item_id) == "released"


async def test_retry_without_the_csrf_token_is_refused(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    system: System,
    integrator: Integrator,
    receiver: Receiver,
) -> None:
    browser, _ = clients
    item_id = await failed_release(system, integrator, receiver)
    await sign_in(browser, system, "ann", ["ship"])
    for form in ({}, {"csrf": "forged"}):
        answer = await browser.post(f"/items/{item_id}/retry", data=form)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert await release_state(system, item_id) == "failed"
    assert await system.worker.run_once() == 0


async def test_a_reviewer_of_another_route_cannot_retry(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    system: System,
    integrator: Integrator,
    receiver: Receiver,
) -> None:
    _, outsider = clients
    item_id = await failed_release(system, integrator, receiver)
    csrf = await sign_in(outsider, system, "bob", ["other"])
    assert (await outsider.get(f"/items/{item_id}")).status_code == 404
    answer = await outsider.post(f"/items/{item_id}/retry", data={"csrf": csrf})
    assert answer.status_code == 404  # not theirs: as if it did not exist
    assert await release_state(system, item_id) == "failed"
    assert await system.worker.run_once() == 0


async def test_a_signed_out_retry_goes_to_sign_in(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    system: System,
    integrator: Integrator,
    receiver: Receiver,
) -> None:
    browser, _ = clients
    item_id = await failed_release(system, integrator, receiver)
    answer = await browser.post(f"/items/{item_id}/retry", data={"csrf": "x"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
    assert await release_state(system, item_id) == "failed"


async def test_in_a_browser_the_failure_appears_live_and_retry_releases(
    browser: Browser, live: Live
) -> None:
    live.receiver.then = 400  # the running worker's one attempt is refused
    data = ItemCreate(route="support", kind="email", title="Refund", content=EMAIL)
    item_id = (await live.system.service.submit(integrator=live.integrator, data=data)).item.id
    page = await signed_in(browser, live)
    await page.goto(f"{live.base}/items/{item_id}")
    await page.wait_for_load_state()
    await page.click("#approve")
    # No reload: the worker's failure reaches the open page over server-sent events.
    alert = page.locator("#release-failed")
    await expect(alert).to_contain_text("Release failed: POST ")
    await expect(alert).to_contain_text("HTTP 400")

    live.receiver.then = 200
    await page.click("#retry")
    await expect(page.locator("#release")).to_have_text("release: released")
    await expect(alert).to_have_count(0)
    releases = [r for r in live.receiver.received if r.path == "/release"]
    assert [r.status for r in releases] == [400, 200]
    assert {r.headers["Idempotency-Key"] for r in releases} == {f"{item_id}:release"}
