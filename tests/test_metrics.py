"""``GET /metrics`` on SQLite and PostgreSQL: counts read from the database."""

from __future__ import annotations

from datetime import timedelta

import httpx

from bot.app import System, create_app
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.ports import Actor
from bot.schemas import ItemCreate
from storage.models import Audit

ANN = Actor(surface="web", user_id="ann", name="ann")
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}


async def scrape(system: System) -> list[str]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://signoff"
    ) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text.splitlines()


async def submit(system: System, integrator: Integrator, confidence: float | None) -> str:
    data = ItemCreate(
        route="support", kind="email", title="Refund", content=EMAIL, confidence=confidence
    )
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def test_metrics_count_outcomes_time_to_decision_audits_and_gold(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    fast = await submit(system, integrator, 0.5)
    slow = await submit(system, integrator, 0.5)
    await submit(system, integrator, 0.5)  # stays pending: the queue
    await submit(system, integrator, 0.995)  # auto-approved
    clock.advance(timedelta(seconds=30))
    await system.service.decide(item_id=fast, action="approve", actor=ANN)
    clock.advance(timedelta(hours=2))
    await system.service.decide(item_id=slow, action="reject", actor=ANN, reason_code="wrong tone")
    async with system.sessions() as session, session.begin():
        session.add(
            Audit(
                item_id=fast,
                route="support",
                confidence=0.995,
                auto_outcome="auto_approved",
                verdict="wrong",
                posted_at=clock.now(),
                decided_at=clock.now(),
            )
        )
    lines = await scrape(system)
    assert 'signoff_items{route="support",state="pending"} 1' in lines
    assert 'signoff_outcomes_total{route="support",outcome="approved"} 1' in lines
    assert 'signoff_outcomes_total{route="support",outcome="auto_approved"} 1' in lines
    assert 'signoff_outcomes_total{route="support",outcome="rejected"} 1' in lines
    assert "# TYPE signoff_time_to_decision_seconds histogram" in lines
    # 30 s and 2 h after posting, and the automatic decision at 0 s
    assert 'signoff_time_to_decision_seconds_bucket{route="support",le="60"} 2' in lines
    assert 'signoff_time_to_decision_seconds_bucket{route="support",le="3600"} 2' in lines
    assert 'signoff_time_to_decision_seconds_bucket{route="support",le="14400"} 3' in lines
    assert 'signoff_time_to_decision_seconds_bucket{route="support",le="+Inf"} 3' in lines
    assert 'signoff_time_to_decision_seconds_count{route="support"} 3' in lines
    assert 'signoff_time_to_decision_seconds_sum{route="support"} 7260' in lines
    assert 'signoff_audits_total{route="support",verdict="wrong"} 1' in lines
