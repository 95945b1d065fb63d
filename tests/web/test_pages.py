"""Web console access rules over HTTP: sessions, CSRF, route scoping, sign-in links."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import System, create_app
from bot.auth import Integrator
from bot.schemas import ItemCreate
from tests.process import run, signoff_env

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi"}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # pages are database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
async def anon(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


async def sign_in(client: httpx.AsyncClient, system: System, name: str, routes: list[str]) -> str:
    """Sign ``client`` in as ``name``; return the page's CSRF token."""
    link = await system.web.auth.invite(name=name, routes=routes)
    path = link.split("127.0.0.1:8000", 1)[1]
    answer = await client.post(path)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await client.get("/")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def item(system: System, integrator: Integrator, route: str) -> str:
    data = ItemCreate(route=route, kind="email", title=f"For {route}", content=EMAIL)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/items/itm_x",
        "/items/itm_x/card",
        "/inbox/rows",
        "/dashboard",
        "/events",
        "/audit",
        "/audit.csv",
        "/audit.jsonl",
    ],
)
async def test_every_page_needs_a_session(anon: httpx.AsyncClient, path: str) -> None:
    answer = await anon.get(path)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")


async def test_a_get_of_the_link_does_not_use_it(anon: httpx.AsyncClient, system: System) -> None:
    link = await system.web.auth.invite(name="ann", routes=["support"])
    path = link.split("127.0.0.1:8000", 1)[1]
    preview = await anon.get(path)  # what a chat app's link preview does
    assert preview.status_code == 200 and "set-cookie" not in preview.headers
    assert (await anon.post(path)).status_code == 303
    reused = await anon.post(path)
    assert reused.status_code == 400 and "not valid" in reused.text


async def test_post_without_the_csrf_token_is_refused(
    anon: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    item_id = await item(system, integrator, "support")
    csrf = await sign_in(anon, system, "ann", ["support"])
    for form in (
        {"action": "approve"},
        {"action": "approve", "csrf": "forged"},
        {"action": "approve", "csrf": "é"},
    ):
        answer = await anon.post(f"/items/{item_id}/decide", data=form)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert (await system.reader.get(item_id=item_id)).state == "pending"
    ok = await anon.post(f"/items/{item_id}/decide", data={"action": "approve", "csrf": csrf})
    assert ok.status_code == 303


async def test_the_reviewer_comes_from_the_session_not_the_form(
    anon: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    item_id = await item(system, integrator, "support")
    csrf = await sign_in(anon, system, "ann", ["support"])
    await anon.post(
        f"/items/{item_id}/decide",
        data={"action": "approve", "csrf": csrf, "actor": "boss", "user": "boss", "name": "boss"},
    )
    decided = await system.reader.get(item_id=item_id)
    assert decided.decisions[0].actor_name == "ann" and decided.decisions[0].surface == "web"


async def test_items_of_other_routes_are_invisible(
    anon: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    mine = await item(system, integrator, "support")
    theirs = await item(system, integrator, "pair")
    csrf = await sign_in(anon, system, "ann", ["support"])
    inbox = await anon.get("/")
    assert "For support" in inbox.text and "For pair" not in inbox.text
    assert (await anon.get(f"/items/{mine}")).status_code == 200
    assert (await anon.get(f"/items/{theirs}")).status_code == 404
    assert (await anon.get(f"/items/{theirs}/card")).status_code == 404
    forced = await anon.post(f"/items/{theirs}/decide", data={"action": "approve", "csrf": csrf})
    assert forced.status_code == 404
    assert (await anon.get("/", params={"route": "pair"})).text.count('class="row"') == 0
    assert (await system.reader.get(item_id=theirs)).state == "pending"


async def test_a_route_reviewer_list_also_applies_on_the_web(
    anon: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    strict = await item(system, integrator, "strict")  # web reviewers: lead, agent
    await sign_in(anon, system, "intern", ["*"])
    assert (await anon.get(f"/items/{strict}")).status_code == 404


async def test_bad_decisions_answer_with_the_reason(
    anon: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    item_id = await item(system, integrator, "support")
    csrf = await sign_in(anon, system, "ann", ["support"])
    bad = await anon.post(
        f"/items/{item_id}/decide", data={"action": "reject", "csrf": csrf, "reason_code": "bogus"}
    )
    assert bad.status_code == 422 and "is not a reject reason of this route" in bad.text
    edit = await anon.post(
        f"/items/{item_id}/decide", data={"action": "edit", "csrf": csrf, "f_to": "not-an-address"}
    )
    assert edit.status_code == 422 and "content.to.0" in edit.text
    odd = await anon.post(f"/items/{item_id}/decide", data={"action": "delete", "csrf": csrf})
    assert odd.status_code == 422


async def test_sign_out_ends_the_session(anon: httpx.AsyncClient, system: System) -> None:
    csrf = await sign_in(anon, system, "ann", ["support"])
    out = await anon.post("/signout", data={"csrf": csrf})
    assert out.status_code == 303
    assert (await anon.get("/")).status_code == 303


async def test_pages_carry_a_strict_content_security_policy(
    anon: httpx.AsyncClient, system: System
) -> None:
    await sign_in(anon, system, "ann", ["support"])
    csp = (await anon.get("/")).headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_users_create_prints_a_sign_in_link(tmp_path: Path) -> None:
    env = signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db")
    done = run(["users", "create", "ann", "--routes", "default", "--json"], env=env)
    answer = json.loads(done.stdout)
    assert answer["name"] == "ann"
    assert answer["sign_in_url"].startswith("http://127.0.0.1:8000/signin/")
    bad = run(["users", "create", "ann", "--routes", "default,nope"], env=env)
    assert bad.returncode == 2 and "--routes: unknown route nope" in bad.stderr


async def test_audit_page_and_downloads_are_scoped_to_the_reviewer(
    anon: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    from bot.ports import Actor

    for route in ("support", "pair"):
        item_id = await item(system, integrator, route)
        await system.service.decide(
            item_id=item_id,
            action="reject",
            reason_text="no",
            actor=Actor(surface="web", user_id="lead", name="lead"),
        )
    await sign_in(anon, system, "ann", ["support"])
    page = await anon.get("/audit")
    assert page.status_code == 200 and "For support" in page.text and "For pair" not in page.text
    csv_answer = await anon.get("/audit.csv", params={"outcome": "rejected"})
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    lines = csv_answer.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("decision_id,at,item_id,route,kind,title,action,outcome")
    assert len(lines) == 2 and ",support," in lines[1]
    jsonl = (await anon.get("/audit.jsonl")).text.splitlines()
    assert [json.loads(line)["route"] for line in jsonl] == ["support"]
    bad = await anon.get("/audit", params={"outcome": "maybe"})
    assert bad.status_code == 422 and "outcome" in bad.text
