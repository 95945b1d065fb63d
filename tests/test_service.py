"""The review service on SQLite and PostgreSQL: routing, decide, quorum, races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import System
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.ports import Actor
from bot.schemas import ItemCreate
from storage import outbox as outbox_store
from tests.fakes.surface import RecordingSurface

EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}


def draft(route: str = "support", confidence: float | None = 0.5, **extra: Any) -> ItemCreate:
    return ItemCreate(
        route=route, kind="email", title="Refund", content=EMAIL, confidence=confidence, **extra
    )


def web(name: str) -> Actor:
    return Actor(surface="web", user_id=name, name=name)


async def deliveries(system: System, item_id: str) -> list[Any]:
    async with system.sessions() as session:
        return await outbox_store.deliveries_for(session, item_id=item_id)


async def test_pending_item_is_posted_to_each_surface(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    assert item.state == "pending" and item.outcome is None and item.decisions == []
    [(card, channel)] = surface.posts
    assert card.item_id == item.id and card.actions == ("approve", "edit", "reject")
    assert [f.label for f in card.fields] == ["To", "Subject"] and channel is None


@pytest.mark.parametrize(
    ("confidence", "state", "outcome", "reason"),
    [
        (0.995, "approved", "auto_approved", "confidence 0.995 ≥ 0.99"),
        (0.99, "approved", "auto_approved", "confidence 0.99 ≥ 0.99"),
        (0.1, "rejected", "auto_rejected", "confidence 0.1 < 0.2"),
        (0.2, "pending", None, None),
        (None, "pending", None, None),
    ],
)
async def test_routing_by_confidence(
    system: System,
    integrator: Integrator,
    surface: RecordingSurface,
    confidence: float | None,
    state: str,
    outcome: str | None,
    reason: str | None,
) -> None:
    item = (
        await system.service.submit(integrator=integrator, data=draft(confidence=confidence))
    ).item
    assert (item.state, item.outcome) == (state, outcome)
    if reason is None:
        assert item.decisions == [] and len(surface.posts) == 1
        return
    [decision] = item.decisions
    assert decision.surface == "policy" and decision.reason_text == reason
    assert surface.posts == []  # decided by policy: nobody is asked
    rows = await deliveries(system, item.id)
    if state == "approved":
        assert item.release_state == "queued" and [r.purpose for r in rows] == ["release"]
    else:
        assert item.release_state == "none" and rows == []


async def test_approve_settles_and_queues_release_in_one_step(
    system: System, integrator: Integrator, surface: RecordingSurface, clock: FrozenClock
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    clock.advance(240)
    done = await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert (done.state, done.outcome, done.release_state) == ("approved", "approved", "queued")
    assert done.final_content == done.content
    assert done.decisions[-1].since_posted_seconds == 240
    [row] = await deliveries(system, item.id)
    assert row.purpose == "release" and row.idempotency_key == f"{item.id}:release"
    card = surface.updates[-1][0]
    assert card.actions == () and card.status == "Approved by ann · 4 min after posting"


async def test_only_a_decision_that_queues_a_delivery_wakes_the_release_worker(
    system: System, integrator: Integrator
) -> None:
    woken = system.worker._wake  # the worker's own wake-up signal
    queued = (await system.service.submit(integrator=integrator, data=draft())).item
    quiet = (await system.service.submit(integrator=integrator, data=draft("selfok"))).item
    woken.clear()
    await system.service.decide(item_id=quiet.id, action="approve", actor=web("ann"))
    assert not woken.is_set()  # no target, no callback: nothing to deliver
    await system.service.decide(item_id=queued.id, action="approve", actor=web("ann"))
    assert woken.is_set()


async def test_edit_approves_the_edited_version_and_keeps_the_original(
    system: System, integrator: Integrator
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    done = await system.service.decide(
        item_id=item.id, action="edit", actor=web("ed"), content={"body": "Hi Jane, sorry!"}
    )
    assert done.outcome == "edited" and done.final_content is not None
    assert done.final_content["body"] == "Hi Jane, sorry!" and done.content["body"] == "Hi Jane"
    assert done.decisions[-1].content_after == done.final_content


async def test_reject_with_a_reason_from_the_route(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    with pytest.raises(InvalidInput, match="reason_code: 'typo' is not a reject reason"):
        await system.service.decide(
            item_id=item.id, action="reject", actor=web("a"), reason_code="typo"
        )
    with pytest.raises(InvalidInput, match="needs a reason"):
        await system.service.decide(item_id=item.id, action="reject", actor=web("a"))
    done = await system.service.decide(
        item_id=item.id,
        action="reject",
        actor=web("lead"),
        reason_code="wrong facts",
        reason_text="refund is 40, not 400",
    )
    assert (done.state, done.outcome, done.release_state) == ("rejected", "rejected", "none")
    assert done.decisions[-1].reason_code == "wrong facts"
    assert await deliveries(system, item.id) == []


async def test_quorum_two_distinct_approvals(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("pair"))).item
    first = await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert first.state == "pending" and first.approvals == 1 and first.quorum == 2
    with pytest.raises(Conflict, match="ann has already approved"):
        await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    again = await system.reader.get(item_id=item.id)
    assert again.state == "pending" and again.approvals == 1
    done = await system.service.decide(item_id=item.id, action="approve", actor=web("bob"))
    assert (done.state, done.outcome) == ("approved", "approved")


async def test_quorum_one_reject_vetoes(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("pair"))).item
    await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    done = await system.service.decide(
        item_id=item.id, action="reject", actor=web("bob"), reason_text="no"
    )
    assert (done.state, done.outcome) == ("rejected", "rejected")


async def test_quorum_card_counts_approvals(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("pair"))).item
    await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert surface.updates[-1][0].status == "1 of 2 approvals"


async def test_an_edit_restarts_the_quorum_count(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("pair"))).item
    await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    edited = await system.service.decide(
        item_id=item.id, action="edit", actor=web("bob"), content={"subject": "Refund issued"}
    )
    assert edited.state == "pending" and edited.approvals == 1  # bob's edit; ann's was of v1
    done = await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert done.outcome == "approved" and done.final_content is not None
    assert done.final_content["subject"] == "Refund issued"


async def test_reviewers_list_is_enforced(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("strict"))).item
    with pytest.raises(NotAllowed, match="intern is not a reviewer of route 'strict'"):
        await system.service.decide(item_id=item.id, action="approve", actor=web("intern"))
    assert (await system.reader.get(item_id=item.id)).state == "pending"


@pytest.mark.parametrize(("route", "allowed"), [("strict", False), ("selfok", True)])
async def test_self_approval(
    system: System, integrator: Integrator, route: str, allowed: bool
) -> None:
    item = (
        await system.service.submit(integrator=integrator, data=draft(route, requested_by="lead"))
    ).item
    if allowed:
        done = await system.service.decide(item_id=item.id, action="approve", actor=web("lead"))
        assert done.state == "approved"
    else:
        with pytest.raises(NotAllowed, match="requester approve their own item"):
            await system.service.decide(item_id=item.id, action="approve", actor=web("lead"))
        done = await system.service.decide(
            item_id=item.id, action="reject", actor=web("lead"), reason_code="wrong"
        )
        assert done.state == "rejected"  # withdrawing one's own request is fine


async def test_decided_item_answers_conflict_naming_the_winner(
    system: System, integrator: Integrator
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    with pytest.raises(Conflict, match="already approved: approve by ann at") as err:
        await system.service.decide(
            item_id=item.id, action="reject", actor=web("bob"), reason_text="late"
        )
    assert err.value.winner is not None and err.value.winner.actor_name == "ann"


async def test_unknown_item(system: System) -> None:
    with pytest.raises(NotFound):
        await system.service.decide(item_id="itm_nope", action="approve", actor=web("a"))


async def test_surface_outage_loses_nothing(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    surface.fail_posts = True
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    assert (await system.reader.get(item_id=item.id)).state == "pending"


async def test_fifty_racing_decisions_have_one_winner(
    system: System, integrator: Integrator
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item

    async def click(n: int) -> Any:
        actor = web(f"reviewer{n}")
        try:
            if n % 2:
                return await system.service.decide(item_id=item.id, action="approve", actor=actor)
            return await system.service.decide(
                item_id=item.id, action="reject", actor=actor, reason_code="wrong tone"
            )
        except Conflict as exc:
            return exc

    results = await asyncio.gather(*(click(n) for n in range(50)))
    winners = [r for r in results if not isinstance(r, Conflict)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 49
    final = await system.reader.get(item_id=item.id)
    [decision] = final.decisions
    assert all(c.winner is not None and c.winner.actor_name == decision.actor_name for c in losers)
    assert all(decision.actor_name in c.message for c in losers)
    releases = [d for d in await deliveries(system, item.id) if d.purpose == "release"]
    assert len(releases) == (1 if final.state == "approved" else 0)


async def test_decisions_cannot_be_rewritten(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft())).item
    await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    for statement in ("UPDATE decisions SET actor_name = 'mallory'", "DELETE FROM decisions"):
        with pytest.raises(Exception, match="append-only"):
            async with system.sessions() as session, session.begin():
                await session.exec(text(statement))
    assert (await system.reader.get(item_id=item.id)).decisions[0].actor_name == "ann"


async def test_nul_characters_are_refused_by_name(system: System, integrator: Integrator) -> None:
    bad = ItemCreate(
        route="support", kind="email", title="Refund", content={**EMAIL, "body": "Hi\x00Jane"}
    )
    with pytest.raises(InvalidInput, match=r"content\.body: must not contain NUL"):
        await system.service.submit(integrator=integrator, data=bad)
    meta = draft(metadata={"tags": ["ok", "b\x00d"]})
    with pytest.raises(InvalidInput, match=r"metadata\.tags\.1: must not contain NUL"):
        await system.service.submit(integrator=integrator, data=meta)


async def test_hundred_concurrent_submits_with_one_key_make_one_item(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    results = await asyncio.gather(
        *(
            system.service.submit(integrator=integrator, data=draft(), idempotency_key="once")
            for _ in range(100)
        )
    )
    assert sum(r.created for r in results) == 1
    assert len({r.item.id for r in results}) == 1
    assert len(surface.posts) == 1  # posted once, by the submit that created it
    page = await system.reader.page(integrator_id=integrator.id)
    assert len(page.items) == 1


async def test_a_second_edit_builds_on_the_first(system: System, integrator: Integrator) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("pair"))).item
    await system.service.decide(
        item_id=item.id,
        action="edit",
        actor=web("ann"),
        content={"body": "Hi Jane, corrected body"},
    )
    done = await system.service.decide(
        item_id=item.id, action="edit", actor=web("bob"), content={"subject": "Refund issued"}
    )
    assert done.state == "pending"  # bob's edit restarted the count
    done = await system.service.decide(item_id=item.id, action="approve", actor=web("ann"))
    assert done.final_content is not None
    assert done.final_content["subject"] == "Refund issued"
    assert done.final_content["body"] == "Hi Jane, corrected body"  # ann's edit kept


async def test_precheck_raises_what_decide_would_without_deciding(
    system: System, integrator: Integrator
) -> None:
    item = (await system.service.submit(integrator=integrator, data=draft("strict"))).item
    with pytest.raises(NotAllowed):
        await system.service.precheck(item_id=item.id, action="approve", actor=web("intern"))
    with pytest.raises(InvalidInput, match=r"content\.to"):
        await system.service.precheck(
            item_id=item.id, action="edit", actor=web("lead"), content={"to": ["nope"]}
        )
    with pytest.raises(InvalidInput, match="reason_code"):
        await system.service.precheck(
            item_id=item.id, action="reject", actor=web("lead"), reason_code="bogus"
        )
    await system.service.precheck(item_id=item.id, action="approve", actor=web("lead"))
    assert (await system.reader.get(item_id=item.id)).state == "pending"
