"""What the SDK reads back: an item's state as a HumanLayer status (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.humanlayer import call_status, contact_status
from bot.schemas import DecisionPublic, ItemPublic

POSTED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DECIDED = POSTED + timedelta(minutes=5)
CALL_META = {
    "humanlayer": {
        "type": "function_call",
        "run_id": "run-1",
        "call_id": "call-1",
        "fn": "send_refund",
        "kwargs": {"amount": 12},
        "reject_options": [{"name": "too_big"}],
    }
}


def item(
    *,
    kind: str = "message",
    outcome: str | None = None,
    decision: dict[str, Any] | None = None,
    content: dict[str, Any] | None = None,
    final: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> ItemPublic:
    state = {
        None: "pending",
        "edited": "approved",
        "auto_approved": "approved",
        "auto_rejected": "rejected",
    }.get(outcome, outcome or "pending")
    decisions = []
    if decision is not None:
        decisions.append(
            DecisionPublic(
                **{
                    "surface": "slack",
                    "actor_id": "U0LEAD",
                    "actor_name": "lead",
                    "reason_code": None,
                    "reason_text": None,
                    "at": DECIDED,
                    "since_posted_seconds": 300.0,
                    **decision,
                }
            )
        )
    return ItemPublic(
        id="itm_1",
        route="humanlayer",
        kind=kind,
        title="t",
        content=content or {"text": "send_refund(amount=12)"},
        final_content=final,
        confidence=None,
        callback_url=None,
        metadata=meta if meta is not None else CALL_META,
        requested_by="agent",
        state=state,
        outcome=outcome,
        release_state="none",
        release_error=None,
        approvals=0,
        quorum=1,
        decisions=decisions,
        created_at=POSTED,
        updated_at=DECIDED,
        decided_at=DECIDED if outcome else None,
        due_at=None,
    )


def test_pending_has_only_the_request_time() -> None:
    status = call_status(item())
    assert status.requested_at == POSTED
    assert (status.approved, status.responded_at, status.comment) == (None, None, None)


def test_approved_runs_the_function() -> None:
    status = call_status(item(outcome="approved", decision={"action": "approve"}))
    assert (status.approved, status.responded_at, status.comment) == (True, DECIDED, None)
    auto = call_status(
        item(
            outcome="auto_approved",
            decision={"action": "auto_approve", "surface": "policy", "reason_text": "0.99"},
        )
    )
    assert (auto.approved, auto.comment) == (True, None)


@pytest.mark.parametrize(
    ("code", "text", "comment", "option"),
    [
        ("too_big", None, "too_big", "too_big"),
        ("too_big", "over the limit", "over the limit", "too_big"),
        ("too risky", "no", "no", None),  # a route reason is not one of the SDK's options
        (None, "no", "no", None),
    ],
)
def test_rejected_carries_a_comment_and_the_option(
    code: str | None, text: str | None, comment: str, option: str | None
) -> None:
    status = call_status(
        item(
            outcome="rejected",
            decision={"action": "reject", "reason_code": code, "reason_text": text},
        )
    )
    assert (status.approved, status.comment, status.reject_option_name) == (False, comment, option)


def test_an_edited_call_is_not_run_with_the_old_arguments() -> None:
    status = call_status(
        item(
            outcome="edited",
            decision={"action": "edit"},
            final={"text": "send_refund(amount=10)"},
        )
    )
    assert status.approved is False
    assert status.comment == "approved only with changes: send_refund(amount=10)"


@pytest.mark.parametrize(("effect", "approved"), [("reject", False), ("approve", True)])
def test_an_expiry_follows_the_routes_on_expire(effect: str, approved: bool) -> None:
    status = call_status(
        item(
            outcome="expired",
            decision={
                "action": "expire",
                "surface": "policy",
                "reason_code": effect,
                "reason_text": f"after 24 h — {'approved' if approved else 'rejected'} by policy",
            },
        )
    )
    assert status.approved is approved and status.comment is not None
    assert status.comment.startswith("expired after 24 h")


QUESTION = {"question": "Which plan?", "answer": None}
CONTACT_META = {"humanlayer": {"type": "human_contact", "run_id": "r", "call_id": "c"}}


def question(**kw: Any) -> ItemPublic:
    return item(kind="question", content=QUESTION, meta=CONTACT_META, **kw)


def test_a_contact_is_answered_by_the_edit() -> None:
    assert contact_status(question()).response is None
    answered = contact_status(
        question(outcome="edited", decision={"action": "edit"}, final={**QUESTION, "answer": "Pro"})
    )
    assert (answered.response, answered.responded_at) == ("Pro", DECIDED)


def test_a_contact_always_gets_a_string_back() -> None:
    approved = contact_status(question(outcome="approved", decision={"action": "approve"}))
    assert approved.response == "approved"
    rejected = contact_status(
        question(outcome="rejected", decision={"action": "reject", "reason_text": "ask sales"})
    )
    assert rejected.response == "rejected: ask sales"
    expired = contact_status(
        question(
            outcome="expired",
            decision={
                "action": "expire",
                "surface": "policy",
                "reason_code": "reject",
                "reason_text": "after 24 h — rejected by policy",
            },
        )
    )
    assert expired.response == "expired after 24 h — rejected by policy"
