"""Calibration over a synthetic history whose error per confidence is known: the
recommended thresholds keep the measured error under the target, and too little data
is said, not papered over. Counting runs in SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.app import System
from bot.calibration import (
    Tally,
    calibration_report,
    clean_run_needed,
    recommend_approve_at,
    recommend_reject_below,
    wilson,
)
from bot.errors import InvalidInput
from bot.routes import RouteTable, parse_routes
from storage.batch import GroupWriter
from storage.models import Audit, Item

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROUTES = {
    "routes": {
        "support": {"surfaces": [{"type": "web"}], "thresholds": {"auto_approve_at": 0.97}},
        "fresh": {"surfaces": [{"type": "web"}]},
    }
}


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(ROUTES)


# (bins, verdicts per bin, not acceptable per bin, how they were judged)
HISTORY = [
    (range(95, 101), 100, 1, "audit-approved"),  # 1 % wrong, checked by audits
    (range(90, 95), 100, 10, "human"),  # 10 %
    (range(20, 90), 10, 3, "human"),  # 30 %
    (range(10, 20), 100, 70, "human"),  # 30 % acceptable
    (range(0, 10), 100, 100, "audit-rejected"),  # never acceptable, checked by audits
]


def synthetic_rows(integrator_id: int, route: str) -> list[Item | Audit]:
    rows: list[Item | Audit] = []
    n = 0
    for bins, count, bad, how in HISTORY:
        for k in bins:
            for i in range(count):
                n += 1
                ok = i >= bad
                item_id = f"itm_{route}_{n:06d}"
                if how == "human":
                    outcome = "approved" if ok else "rejected"
                elif how == "audit-approved":
                    outcome = "auto_approved"
                else:
                    outcome = "auto_rejected"
                rows.append(
                    Item(
                        id=item_id,
                        integrator_id=integrator_id,
                        route=route,
                        kind="message",
                        title="t",
                        content={"text": "x"},
                        confidence=k / 100,
                        state="rejected" if outcome.endswith("rejected") else "approved",
                        outcome=outcome,
                        release_state="none",
                        created_at=AT,
                        updated_at=AT,
                        decided_at=AT,
                    )
                )
                if how.startswith("audit"):
                    # auto-approved: correct iff acceptable; auto-rejected: correct iff not
                    correct = ok if outcome == "auto_approved" else not ok
                    rows.append(
                        Audit(
                            item_id=item_id,
                            route=route,
                            confidence=k / 100,
                            auto_outcome=outcome,
                            verdict="correct" if correct else "wrong",
                            actor_name="ann",
                            posted_at=AT,
                            decided_at=AT,
                        )
                    )
    return rows


async def seed(system: System, route: str = "support") -> None:
    key = await system.keys.create(name="agent")
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    await GroupWriter(sessions=system.sessions).insert(synthetic_rows(found.id, route))


def measured_error(threshold: float) -> float:
    """The true share not acceptable among the synthetic drafts at ≥ threshold."""
    n = bad = 0
    for bins, count, wrong, _ in HISTORY:
        for k in bins:
            if k / 100 >= threshold:
                n, bad = n + count, bad + wrong
    return bad / n


async def test_recommendations_keep_the_measured_error_under_the_target(
    system: System,
) -> None:
    await seed(system)
    route = system.routes.get("support")
    assert route is not None
    report = await calibration_report(system.sessions, route=route, target_error=0.05)

    assert report.verdicts == 3800 and report.audits == 1600
    approve = report.approve.value
    assert approve == 0.93
    assert measured_error(approve) < 0.05
    assert report.approve.upper is not None and report.approve.upper < 0.05
    # the lowest such threshold: one hundredth lower the bound is over the target
    assert wilson(36, 900)[1] >= 0.05 and measured_error(0.92) < 0.05
    assert report.reject.value == 0.11
    assert report.reject.errors == 30 and report.reject.n == 1100

    top = report.bands[0]
    assert top.band.label == "[0.9, 1.0]" and top.n == 1100 and top.acceptable == 1044
    assert top.low < top.accuracy < top.high  # type: ignore[operator]
    assert (top.audits, top.agreed) == (600, 594)
    bottom = report.bands[-1]
    assert (bottom.n, bottom.acceptable, bottom.audits, bottom.agreed) == (1000, 0, 1000, 1000)

    text = report.text()
    assert "Recommended auto_approve_at: 0.93" in text
    assert "Recommended auto_reject_below: 0.11" in text
    assert "auto_approve_at 0.97" in text
    data = report.as_dict()
    assert data["recommended"]["auto_approve_at"]["value"] == 0.93
    assert [b["band"] for b in data["bands"]][:2] == ["[0.9, 1.0]", "[0.8, 0.9)"]


async def test_too_little_data_says_so_instead_of_recommending(system: System) -> None:
    route = system.routes.get("fresh")
    assert route is not None
    report = await calibration_report(system.sessions, route=route, target_error=0.01)
    assert report.approve.value is None and report.reject.value is None
    assert report.approve.note.startswith("not enough data: no verdicts yet")
    assert "Recommended auto_approve_at: none (not enough data" in report.text()
    with pytest.raises(InvalidInput, match="target_error: must be between 0 and 1"):
        await calibration_report(system.sessions, route=route, target_error=1.5)


def test_a_clean_run_shorter_than_the_bound_allows_is_not_enough() -> None:
    needed = clean_run_needed(0.01)
    assert wilson(0, needed)[1] < 0.01 <= wilson(0, needed - 1)[1]
    bins = [Tally() for _ in range(101)]
    bins[99].add(needed - 1, acceptable=True)
    short = recommend_approve_at(bins, target=0.01)
    assert short.value is None and f"at least {needed:,} verdicts" in short.note
    bins[99].add(1, acceptable=True)
    assert recommend_approve_at(bins, target=0.01).value == 0.99
    assert recommend_reject_below(bins, target=0.01).value is None


def test_wilson_interval() -> None:
    low, high = wilson(8, 10)
    assert round(low, 4) == 0.4902 and round(high, 4) == 0.9433
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(3, 2)
