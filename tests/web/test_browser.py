"""The web inbox in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from playwright.async_api import Browser, Page, expect

from bot.ports import Actor
from bot.schemas import ItemCreate
from tests.process import run, signoff_env
from tests.web.conftest import ARTIFACTS, Live

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane,\nrefunded."}
DIFF = (
    "--- a/app/refunds.py\n+++ b/app/refunds.py\n@@ -10,3 +10,3 @@ def refund(order):\n"
    "     total = order.total\n-    return total * 0.9\n+    return total\n     # end\n"
)


async def submit(live: Live, route: str, kind: str, title: str, content: dict[str, Any]) -> str:
    data = ItemCreate(route=route, kind=kind, title=title, content=content, confidence=0.5)
    return (await live.system.service.submit(integrator=live.integrator, data=data)).item.id


async def signed_in(browser: Browser, live: Live, **context: Any) -> Page:
    page = await (await browser.new_context(**context)).new_page()
    page.set_default_timeout(10_000)
    await page.goto(live.link)
    await page.click("#signin")
    await expect(page).to_have_url(f"{live.base}/")
    await page.wait_for_load_state()  # app.js has attached its handlers
    return page


async def test_sign_in_with_a_link_shows_the_inbox(browser: Browser, live: Live) -> None:
    await submit(live, "support", "email", "Refund for order 1234", EMAIL)
    await submit(live, "secret", "message", "Not for rita", {"text": "hidden"})
    page = await signed_in(browser, live)
    await expect(page.locator("table.items")).to_contain_text("Refund for order 1234")
    await expect(page.locator("table.items")).not_to_contain_text("Not for rita")
    await expect(page.locator('.count[data-route="support"]')).to_have_text("1")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "inbox.png", full_page=True)
    # the link worked once: a second browser cannot use it
    other = await (await browser.new_context()).new_page()
    await other.goto(live.link)
    await other.click("#signin")
    await expect(other.locator(".notice")).to_contain_text("not valid")


async def test_approve_an_email_and_see_it_released(browser: Browser, live: Live) -> None:
    item_id = await submit(live, "support", "email", "Refund for order 1234", EMAIL)
    page = await signed_in(browser, live)
    await page.click(f'tr[data-id="{item_id}"] a')
    await expect(page.locator(".fields")).to_contain_text("jane@example.com")
    await expect(page.locator(".fields")).to_contain_text("Your refund")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "item-email.png", full_page=True)
    await page.click("#approve")
    await expect(page.locator("#state")).to_have_text("approved")
    await expect(page.locator("#release")).to_have_text("release: released")
    await expect(page.locator(".history")).to_contain_text("rita (web) approved")
    await expect(page.locator(".history")).to_contain_text("release attempt 1: HTTP 200")
    [delivered] = live.receiver.accepted()
    assert json.loads(delivered.body)["item"]["id"] == item_id


async def test_edit_a_code_change(browser: Browser, live: Live) -> None:
    content = {"repository": "example/shop", "title": "Refund in full", "diff": DIFF}
    item_id = await submit(live, "code", "code_change", "Refund the full amount", content)
    page = await signed_in(browser, live)
    await page.goto(f"{live.base}/items/{item_id}")
    added = page.locator("table.diff tr.d-add")
    await expect(added).to_have_text("11+    return total")  # new line number 11
    await expect(page.locator("table.diff tr.d-del")).to_contain_text("return total * 0.9")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "item-code.png", full_page=True)
    await page.click("#edit summary")
    edited = DIFF.replace("+    return total\n", "+    return order.total\n")
    await page.fill('textarea[name="f_diff"]', edited)
    await page.click("#save-edit")
    await expect(page.locator("#state")).to_have_text("edited")
    await expect(page.locator("#edit-diff")).to_contain_text("+    +    return order.total")
    await expect(page.locator("#release")).to_have_text("release: released")
    [delivered] = live.receiver.accepted()
    released = json.loads(delivered.body)["item"]
    assert released["final_content"]["diff"] == edited and released["content"]["diff"] == DIFF
    assert released["outcome"] == "edited"


async def test_reject_with_a_reason(browser: Browser, live: Live) -> None:
    item_id = await submit(live, "support", "email", "Refund for order 1234", EMAIL)
    page = await signed_in(browser, live)
    await page.goto(f"{live.base}/items/{item_id}")
    await page.keyboard.press("r")  # the shortcut opens the reject form
    await page.select_option('select[name="reason_code"]', "wrong facts")
    await page.fill('textarea[name="reason_text"]', "the refund was €40, not €400")
    await page.click("#confirm-reject")
    await expect(page.locator("#state")).to_have_text("rejected")
    await expect(page.locator(".history")).to_contain_text(
        "rejected: wrong facts: the refund was €40, not €400"
    )
    assert live.receiver.received == []  # nothing released


async def test_a_hostile_draft_is_shown_as_text(browser: Browser, live: Live) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    item_id = await submit(live, "support", "email", evil, {**EMAIL, "body": evil})
    page = await signed_in(browser, live)
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(f"{live.base}/items/{item_id}")
    await expect(page.locator("pre.body")).to_have_text(evil)
    await expect(page.locator("h1")).to_have_text(evil)
    assert await page.locator("main img").count() == 0
    assert await page.locator("main script").count() == 0
    await page.goto(f"{live.base}/")
    await expect(page.locator("table.items")).to_contain_text(evil)
    assert dialogs == []


async def test_a_decision_made_elsewhere_appears_without_a_reload(
    browser: Browser, live: Live
) -> None:
    item_id = await submit(live, "support", "email", "Refund for order 1234", EMAIL)
    other_id = await submit(live, "support", "email", "Second draft", EMAIL)
    page = await signed_in(browser, live)
    inbox = await page.context.new_page()
    await inbox.goto(f"{live.base}/")
    await page.goto(f"{live.base}/items/{item_id}")
    await page.evaluate("window.notReloaded = true")
    await inbox.evaluate("window.notReloaded = true")
    await live.system.service.decide(
        item_id=item_id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
    )
    await expect(page.locator("#state")).to_have_text("approved", timeout=2_000)
    await expect(page.locator("#approve")).to_have_count(0)
    await expect(inbox.locator(f'tr[data-id="{item_id}"]')).to_have_count(0, timeout=2_000)
    await expect(inbox.locator(f'tr[data-id="{other_id}"]')).to_have_count(1)
    assert await page.evaluate("window.notReloaded") is True
    assert await inbox.evaluate("window.notReloaded") is True


async def test_a_decision_made_by_another_process_appears_without_a_reload(
    browser: Browser, live: Live
) -> None:
    item_id = await submit(live, "support", "email", "Refund for order 1234", EMAIL)
    page = await signed_in(browser, live)
    await page.goto(f"{live.base}/items/{item_id}")
    await page.evaluate("window.notReloaded = true")
    done = await asyncio.to_thread(  # another process: the in-process notifier never hears
        run,
        ["decide", item_id, "reject", "--as", "lead", "--text", "wrong order"],
        env=signoff_env(**live.env),
    )
    assert done.returncode == 0, done.stderr
    await expect(page.locator("#state")).to_have_text("rejected", timeout=3_000)
    await expect(page.locator(".history")).to_contain_text("lead (web) rejected: wrong order")
    assert await page.evaluate("window.notReloaded") is True


async def test_a_click_on_a_decided_item_says_who_decided_it(browser: Browser, live: Live) -> None:
    item_id = await submit(live, "support", "email", "Refund for order 1234", EMAIL)
    # without JavaScript there are no live updates: the stale page still has its buttons
    page = await signed_in(browser, live, java_script_enabled=False)
    await page.goto(f"{live.base}/items/{item_id}")
    await live.system.service.decide(
        item_id=item_id, action="approve", actor=Actor(surface="web", user_id="ann", name="ann")
    )
    await page.click("#approve")
    await expect(page.locator(".notice")).to_contain_text("Already approved by ann at ")


async def test_keyboard_moves_and_opens(browser: Browser, live: Live) -> None:
    first = await submit(live, "support", "email", "First", EMAIL)
    second = await submit(live, "support", "email", "Second", EMAIL)
    page = await signed_in(browser, live)
    await page.keyboard.press("j")
    await expect(page.locator(f'tr[data-id="{first}"]')).to_have_class("row selected")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    await page.keyboard.press("j")
    await expect(page.locator(f'tr[data-id="{second}"]')).to_have_class("row selected")
    await page.keyboard.press("e")
    await expect(page).to_have_url(f"{live.base}/items/{second}#edit")
    await expect(page.locator("#edit")).to_have_attribute("open", "")
    await page.click("#edit summary")  # close the editor; its field had the focus
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.press("a")  # approve from the item page
    await expect(page.locator("#state")).to_have_text("approved")


async def test_dashboard_renders(browser: Browser, live: Live) -> None:
    for n in range(3):
        item_id = await submit(live, "support", "email", f"Draft {n}", EMAIL)
        if n:
            await live.system.service.decide(
                item_id=item_id,
                action="approve" if n == 1 else "reject",
                actor=Actor(surface="web", user_id="ann", name="ann"),
                reason_text="no",
            )
    page = await signed_in(browser, live)
    await page.goto(f"{live.base}/dashboard")
    await expect(page.locator("main svg").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
