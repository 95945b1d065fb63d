"""Audits of automatic decisions: sampling at the route's rate, blind cards, first
answer wins, agreement per confidence band. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bot.app import System
from bot.audits import (
    AUDIT_ACTIONS,
    AuditDesk,
    agreement_by_band,
    audit_card,
    band_of,
    draft_was_acceptable,
)
from bot.auth import Integrator
from bot.card import ReviewCard
from bot.clock import FrozenClock
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage import audits as audit_store
from tests.fakes.surface import RecordingSurface

ANN = Actor(surface="web", user_id="ann", name="ann")
BOB = Actor(surface="web", user_id="bob", name="bob")
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, refunded."}


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "support": {
                    "surfaces": [{"type": "web"}],
                    "reviewers": {"web": ["ann", "bob"]},
                    "thresholds": {"auto_approve_at": 0.9, "auto_reject_below": 0.2},
                    "audit": {"rate": 0.5},
                },
                "quiet": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.9},
                },
            }
        }
    )


async def submit(
    system: System, integrator: Integrator, *, confidence: float, route: str = "support"
) -> str:
    data = ItemCreate(
        route=route, kind="email", title="Refund", content=EMAIL, confidence=confidence
    )
    return (await system.service.submit(integrator=integrator, data=data)).item.id


def card_text(card: ReviewCard) -> str:
    """Everything a reviewer can read on the card, in one string."""
    parts = [card.title, card.context_line, card.body or "", card.diff or "", card.status or ""]
    parts += [f"{f.label} {f.value}" for f in card.fields]
    parts += [*card.options, card.release_note or "", card.edit_diff or ""]
    return " ".join(parts).lower()


async def audits_of(system: System, route: str = "support") -> list[audit_store.OpenAudit]:
    async with system.sessions() as session:
        return await audit_store.open_audits(session, routes=[route], limit=1000)


async def test_half_of_200_automatic_approvals_are_posted_blind(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    assert system.audits is not None
    system.audits.random = random.Random(20260105).random
    for n in range(200):
        await submit(system, integrator, confidence=0.9 + (n % 10) / 100)
    sampled = await audits_of(system)
    # Binomial(200, 0.5): mean 100, sd ~7; 70..130 is beyond four sd on either side.
    assert 70 <= len(sampled) <= 130
    assert len(surface.posts) == len(sampled)
    assert {a.audit.auto_outcome for a in sampled} == {"auto_approved"}
    for card, channel in surface.posts:
        assert card.audit_id is not None and channel is None
        assert card.actions == tuple(AUDIT_ACTIONS)
        assert card.status is None
        text = card_text(card)
        assert "approv" not in text and "reject" not in text and "auto" not in text
        assert "confidence 0.9" in text and "hi jane, refunded." in text
        assert card.web_path == f"/audits/{card.audit_id}"


async def test_auto_rejections_are_audited_and_pending_items_are_not(
    system: System, integrator: Integrator
) -> None:
    assert system.audits is not None
    system.audits.random = lambda: 0.0  # always sampled
    await submit(system, integrator, confidence=0.1)
    await submit(system, integrator, confidence=0.5)  # a human decides: nothing to audit
    [audit] = await audits_of(system)
    assert audit.audit.auto_outcome == "auto_rejected" and audit.audit.confidence == 0.1


async def test_a_route_without_an_audit_rate_is_never_sampled(
    system: System, integrator: Integrator
) -> None:
    assert system.audits is not None
    system.audits.random = lambda: 0.0
    await submit(system, integrator, confidence=0.95, route="quiet")
    assert await audits_of(system, "quiet") == []


async def test_rate_zero_does_no_database_work(routes: RouteTable) -> None:
    def no_database() -> object:
        raise AssertionError("the database was touched")

    desk = AuditDesk(
        sessions=no_database,  # type: ignore[arg-type]
        routes=routes,
        surfaces={},
        clock=FrozenClock(),
        random=lambda: 0.0,
    )
    from bot.schemas import ItemPublic

    item = ItemPublic.model_construct(route="quiet", outcome="auto_approved", id="itm_1")
    assert await desk.maybe_sample(item) is None


async def test_the_first_answer_wins_and_the_second_is_told_who(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    assert system.audits is not None
    system.audits.random = lambda: 0.0
    await submit(system, integrator, confidence=0.95)
    [open_] = await audits_of(system)
    audit_id = open_.audit.id
    assert audit_id is not None
    clock.advance(timedelta(minutes=3))
    answered = await system.audits.answer(audit_id=audit_id, verdict="correct", actor=ANN)
    assert answered.audit.verdict == "correct" and answered.audit.actor_name == "ann"
    assert answered.audit.decided_at == clock.now()
    with pytest.raises(Conflict, match=r"already audited by ann \(correct\) at 09:03 UTC"):
        await system.audits.answer(audit_id=audit_id, verdict="wrong", actor=BOB)
    assert await audits_of(system) == []
    card = audit_card(answered)
    assert card.actions == () and card.status == "Audited by ann: correct"


async def test_wrong_with_a_corrected_version(system: System, integrator: Integrator) -> None:
    assert system.audits is not None
    system.audits.random = lambda: 0.0
    await submit(system, integrator, confidence=0.95)
    [open_] = await audits_of(system)
    assert open_.audit.id is not None
    answered = await system.audits.answer(
        audit_id=open_.audit.id,
        verdict="wrong",
        actor=BOB,
        corrected={"subject": "Your refund is on its way"},
    )
    assert answered.audit.verdict == "wrong"
    assert answered.audit.corrected is not None
    assert answered.audit.corrected["subject"] == "Your refund is on its way"
    assert answered.audit.corrected["body"] == EMAIL["body"]


async def test_bad_answers_are_refused_naming_the_problem(
    system: System, integrator: Integrator
) -> None:
    assert system.audits is not None
    system.audits.random = lambda: 0.0
    await submit(system, integrator, confidence=0.95)
    [open_] = await audits_of(system)
    audit_id = open_.audit.id
    assert audit_id is not None
    with pytest.raises(InvalidInput, match="verdict: must be one of correct, wrong"):
        await system.audits.answer(audit_id=audit_id, verdict="maybe", actor=ANN)
    with pytest.raises(InvalidInput, match="corrected: a corrected version goes with 'wrong'"):
        await system.audits.answer(
            audit_id=audit_id, verdict="correct", actor=ANN, corrected={"subject": "x"}
        )
    with pytest.raises(InvalidInput, match=r"content\.to"):
        await system.audits.answer(
            audit_id=audit_id, verdict="wrong", actor=ANN, corrected={"to": ["not-an-address"]}
        )
    carol = Actor(surface="web", user_id="carol", name="carol")
    with pytest.raises(NotAllowed, match="carol is not a reviewer of route 'support'"):
        await system.audits.answer(audit_id=audit_id, verdict="correct", actor=carol)
    with pytest.raises(NotFound, match="no audit 999"):
        await system.audits.answer(audit_id=999, verdict="correct", actor=ANN)
    assert len(await audits_of(system)) == 1  # still open


def test_bands_of_a_tenth() -> None:
    assert band_of(1.0).label == "[0.9, 1.0]" and band_of(0.9).index == 9
    assert band_of(0.8999).label == "[0.8, 0.9)" and band_of(0.0).label == "[0.0, 0.1)"
    assert band_of(0.29).index == 2 and band_of(0.3).index == 3


def test_agreement_per_band_and_what_an_audit_says_about_the_draft() -> None:
    rows = agreement_by_band(
        [
            (95, "auto_approved", "correct", 8),
            (100, "auto_approved", "wrong", 2),
            (12, "auto_rejected", "correct", 3),
        ]
    )
    top = rows[0]
    assert (top.band.index, top.audits, top.agreed, top.rate) == (9, 10, 8, 0.8)
    low = next(r for r in rows if r.band.index == 1)
    assert (low.audits, low.rate) == (3, 1.0)
    assert all(r.rate is None for r in rows if r.band.index not in (9, 1))
    assert draft_was_acceptable(auto_outcome="auto_approved", verdict="correct")
    assert not draft_was_acceptable(auto_outcome="auto_approved", verdict="wrong")
    assert draft_was_acceptable(auto_outcome="auto_rejected", verdict="wrong")
    assert not draft_was_acceptable(auto_outcome="auto_rejected", verdict="correct")
