"""Reviewer fatigue: dwell times and the rubber-stamp flag, pure and through decide."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.app import System
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.fatigue import is_rubber_stamp, reading_seconds, seconds_between, text_length
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage.models import Decision

BODY = ("Dear Jane, thank you for your patience while we looked into order 1234. " * 40)[:1980]
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund is on its way", "body": BODY}
CHARS = len(EMAIL["subject"]) + len(BODY)  # what a reviewer reads: 2,005 characters


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "support": {"surfaces": [{"type": "web"}]},  # 40 characters a second
                "pair": {"surfaces": [{"type": "web"}], "quorum": 2},
                "slow": {
                    "surfaces": [{"type": "web"}],
                    "review": {"rubber_stamp_chars_per_second": 5},
                },
            }
        }
    )


def reviewer(name: str) -> Actor:
    return Actor(surface="web", user_id=name, name=name)


async def submit(system: System, integrator: Integrator, route: str = "support") -> str:
    data = ItemCreate(route=route, kind="email", title="Refund", content=EMAIL)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def decisions(system: System, item_id: str) -> list[Decision]:
    async with system.sessions() as session:
        query = select(Decision).where(Decision.item_id == item_id).order_by(col(Decision.id))
        return list((await session.exec(query)).all())


# -- pure --------------------------------------------------------------------------------


def test_text_length_counts_what_is_read() -> None:
    assert CHARS == 2005
    assert text_length(EMAIL) == CHARS  # addresses are not counted
    assert text_length({**EMAIL, "html": "<p>" + BODY + "</p>"}) == CHARS  # nor the HTML copy
    assert text_length({"question": "Ship?", "options": ["yes", "no"], "proposed": "yes"}) == 13
    assert text_length({"nested": {"a": "xy", "n": 3}, "list": [["abc"]]}) == 5


def test_a_two_second_approval_of_a_long_email_is_a_rubber_stamp() -> None:
    assert is_rubber_stamp(action="approve", chars=CHARS, seconds=2, chars_per_second=40)
    assert is_rubber_stamp(action="edit", chars=CHARS, seconds=2, chars_per_second=40)
    assert not is_rubber_stamp(action="approve", chars=CHARS, seconds=120, chars_per_second=40)
    assert not is_rubber_stamp(action="reject", chars=CHARS, seconds=2, chars_per_second=40)
    # the boundary: 2,005 characters at 40 a second take 50.125 s
    assert is_rubber_stamp(action="approve", chars=CHARS, seconds=50, chars_per_second=40)
    assert not is_rubber_stamp(action="approve", chars=CHARS, seconds=50.2, chars_per_second=40)
    with pytest.raises(ValueError, match="chars_per_second must be positive"):
        is_rubber_stamp(action="approve", chars=1, seconds=1, chars_per_second=0)


def test_reading_time_is_from_opening_where_known() -> None:
    assert reading_seconds(since_posted=3600, opened=2) == 2
    assert reading_seconds(since_posted=3600, opened=None) == 3600
    assert reading_seconds(since_posted=10, opened=30) == 10  # not read before it was posted
    clock = FrozenClock()
    now = clock.now()
    assert seconds_between(None, now) is None
    assert seconds_between(now - timedelta(seconds=7), now) == 7
    assert seconds_between(now + timedelta(seconds=3), now) == 0  # a surface's clock ahead
    with pytest.raises(ValueError, match="timezone-aware"):
        seconds_between(now.replace(tzinfo=None), now)


# -- through decide ----------------------------------------------------------------------


async def test_approval_two_seconds_after_posting_is_flagged(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator)
    clock.advance(2)
    await system.service.decide(item_id=item_id, action="approve", actor=reviewer("ann"))
    [decision] = await decisions(system, item_id)
    assert decision.rubber_stamp is True
    assert decision.since_posted_seconds == 2 and decision.opened_seconds is None


async def test_approval_after_two_minutes_is_not_flagged(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator)
    clock.advance(120)
    await system.service.decide(item_id=item_id, action="approve", actor=reviewer("ann"))
    [decision] = await decisions(system, item_id)
    assert decision.rubber_stamp is False and decision.since_posted_seconds == 120


async def test_opened_time_is_recorded_and_used(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    """Posted an hour ago, opened two seconds ago: a rubber stamp all the same."""
    item_id = await submit(system, integrator)
    clock.advance(3600)
    opened = clock.now()
    clock.advance(2)
    await system.service.decide(
        item_id=item_id, action="approve", actor=reviewer("ann"), opened_at=opened
    )
    [decision] = await decisions(system, item_id)
    assert decision.since_posted_seconds == 3602 and decision.opened_seconds == 2
    assert decision.rubber_stamp is True


async def test_edits_are_judged_on_the_text_shown_and_rejections_never(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    edited = await submit(system, integrator)
    rejected = await submit(system, integrator)
    clock.advance(3)
    await system.service.decide(
        item_id=edited, action="edit", actor=reviewer("ann"), content={"subject": "Refund sent"}
    )
    await system.service.decide(
        item_id=rejected, action="reject", actor=reviewer("ann"), reason_text="wrong amount"
    )
    assert [d.rubber_stamp for d in await decisions(system, edited)] == [True]
    assert [d.rubber_stamp for d in await decisions(system, rejected)] == [False]


async def test_every_quorum_approval_is_timed(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    item_id = await submit(system, integrator, route="pair")
    clock.advance(1)
    await system.service.decide(item_id=item_id, action="approve", actor=reviewer("ann"))
    clock.advance(300)
    await system.service.decide(item_id=item_id, action="approve", actor=reviewer("bob"))
    first, second = await decisions(system, item_id)
    assert (first.rubber_stamp, first.decisive) == (True, False)
    assert (second.rubber_stamp, second.decisive) == (False, True)


async def test_the_reading_speed_is_a_route_setting(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    """At 5 characters a second, 2,005 characters take 401 s: 2 minutes is too fast."""
    item_id = await submit(system, integrator, route="slow")
    clock.advance(120)
    await system.service.decide(item_id=item_id, action="approve", actor=reviewer("ann"))
    [decision] = await decisions(system, item_id)
    assert decision.rubber_stamp is True
