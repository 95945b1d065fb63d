"""The web console's Audits over HTTP: the blind card, Correct / Wrong / fix, first
answer wins, route scoping, and the drift alarm's changes on the audit log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.app import System, create_app
from bot.auth import Integrator
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage import audits as audit_store
from storage.models import Audit, ConfigChange
from tests.web.test_pages import sign_in

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, refunded."}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # pages are database-agnostic; storage runs both
    return sqlite_url


@pytest.fixture
def routes() -> RouteTable:
    audited = {
        "surfaces": [{"type": "web"}],
        "thresholds": {"auto_approve_at": 0.9},
        "audit": {"rate": 1.0},
    }
    return parse_routes({"routes": {"support": audited, "other": audited}})


@pytest.fixture
async def web(system: System) -> AsyncIterator[httpx.AsyncClient]:
    assert system.audits is not None
    app = create_app(system, migrate=False, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        yield client


async def auto_approved(system: System, integrator: Integrator, route: str = "support") -> int:
    data = ItemCreate(route=route, kind="email", title="Refund", content=EMAIL, confidence=0.95)
    assert (await system.service.submit(integrator=integrator, data=data)).item.outcome == (
        "auto_approved"
    )
    async with system.sessions() as session:
        opened = await audit_store.open_audits(session, routes=[route])
    audit_id = opened[-1].audit.id
    assert audit_id is not None
    return audit_id


async def stored(system: System, audit_id: int) -> Audit:
    async with system.sessions() as session:
        audit = await audit_store.get_audit(session, audit_id=audit_id)
    assert audit is not None
    return audit


def article(html: str) -> str:
    match = re.search(r'<article class="card[^"]*" id="audit-card">(.*?)</article>', html, re.S)
    assert match, html
    return match.group(1)


async def test_the_blind_card_and_correct_recorded_once(
    web: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    audit_id = await auto_approved(system, integrator)
    csrf = await sign_in(web, system, "rita", ["support"])
    listed = await web.get("/audits")
    assert listed.status_code == 200 and f'href="/audits/{audit_id}"' in listed.text
    page = await web.get(f"/audits/{audit_id}")
    card = article(page.text).lower()
    # it asks about "signoff's automatic decision", never says what that was
    assert "approv" not in card and "reject" not in card and "history" not in card
    assert "confidence 0.95" in card and "hi jane, refunded." in card
    assert 'id="audit-correct"' in card and 'id="audit-fix"' in card

    done = await web.post(f"/audits/{audit_id}", data={"csrf": csrf, "verdict": "correct"})
    assert done.status_code == 303 and done.headers["location"] == "/audits"
    audit = await stored(system, audit_id)
    assert (audit.verdict, audit.surface, audit.actor_name) == ("correct", "web", "rita")
    assert f'href="/audits/{audit_id}"' not in (await web.get("/audits")).text

    again = await web.post(f"/audits/{audit_id}", data={"csrf": csrf, "verdict": "wrong"})
    assert again.status_code == 409 and "Already audited by rita (correct) at " in again.text
    assert "Audited by rita: correct" in article(again.text)
    assert (await stored(system, audit_id)).verdict == "correct"


async def test_wrong_with_a_fix_and_bad_input(
    web: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    audit_id = await auto_approved(system, integrator)
    csrf = await sign_in(web, system, "rita", ["support"])
    bad = await web.post(f"/audits/{audit_id}", data={"csrf": csrf, "verdict": "maybe"})
    assert bad.status_code == 422 and "Verdict: must be one of correct, wrong" in bad.text
    forged = await web.post(f"/audits/{audit_id}", data={"verdict": "wrong"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    fixed = await web.post(
        f"/audits/{audit_id}",
        data={"csrf": csrf, "verdict": "wrong", "fix": "1", "f_subject": "Refund on its way"},
    )
    assert fixed.status_code == 303
    audit = await stored(system, audit_id)
    assert audit.verdict == "wrong" and audit.corrected is not None
    assert audit.corrected["subject"] == "Refund on its way"


async def test_audits_of_other_routes_are_invisible(
    web: httpx.AsyncClient, system: System, integrator: Integrator
) -> None:
    theirs = await auto_approved(system, integrator, route="other")
    csrf = await sign_in(web, system, "rita", ["support"])
    assert f"/audits/{theirs}" not in (await web.get("/audits")).text
    assert (await web.get(f"/audits/{theirs}")).status_code == 404
    answer = await web.post(f"/audits/{theirs}", data={"csrf": csrf, "verdict": "correct"})
    assert answer.status_code == 404 and (await stored(system, theirs)).verdict is None
    assert (await web.get("/audits/nope")).status_code == 422


async def test_the_audit_log_shows_the_changes_signoff_made(
    web: httpx.AsyncClient, system: System
) -> None:
    async with system.sessions() as session, session.begin():
        for route in ("support", "other"):
            session.add(
                ConfigChange(
                    route=route,
                    key="thresholds.auto_approve_at",
                    old_value=0.9,
                    new_value=0.92,
                    reason=f"audited error on {route} is above the target",
                    actor="signoff drift alarm",
                    at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
                )
            )
    await sign_in(web, system, "rita", ["support"])
    log = (await web.get("/audit")).text
    assert "audited error on support is above the target" in log
    assert "0.9 → 0.92" in log and "signoff drift alarm" in log
    assert "audited error on other" not in log
