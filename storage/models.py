"""The tables, as SQLModel families: a ``…Base`` of shared columns and the table class.

Public (API) shapes live in :mod:`bot.schemas`; these classes are the stored form.
Decisions are append-only: the migration installs triggers that refuse UPDATE and
DELETE on ``decisions``, so no code path can rewrite history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import JSONColumn, UTCDateTime


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


class ApiKeyBase(SQLModel):
    name: str = Field(max_length=100, unique=True)


class ApiKey(ApiKeyBase, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_digest: str = Field(max_length=64, unique=True)
    signing_secret: str = Field(max_length=100)
    created_at: datetime = _ts()


class ItemBase(SQLModel):
    route: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    title: str = Field(max_length=300)
    confidence: float | None = None
    callback_url: str | None = Field(default=None, max_length=2000)
    requested_by: str | None = Field(default=None, max_length=200)


class Item(ItemBase, table=True):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("integrator_id", "idempotency_key", name="uq_items_idempotency"),
        Index("ix_items_integrator_id_id", "integrator_id", "id"),
        Index("ix_items_state_route", "state", "route"),
        # with id: many items due at one minute (working hours open) need no sort
        Index("ix_items_step_due", "state", "step_due_at", "id"),
        Index("ix_items_post_due", "state", "post_due_at", "id"),
        Index("ix_items_reserved", "state", "route", "reserved_until"),
        Index("ix_items_redraft", "state", "redraft_until"),
    )

    id: str = Field(primary_key=True, max_length=40)
    integrator_id: int = Field(foreign_key="api_keys.id")
    content: dict[str, Any] = Field(sa_column=Column(JSONColumn, nullable=False))
    final_content: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONColumn, nullable=True)
    )
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSONColumn, nullable=False)
    )
    state: str = Field(max_length=16)
    outcome: str | None = Field(default=None, max_length=16)
    release_state: str = Field(max_length=16)
    release_error: str | None = None
    version: int = 1
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    updated_at: datetime = _ts(index=True)
    decided_at: datetime | None = _ts(nullable=True, index=True)
    due_at: datetime | None = _ts(nullable=True)
    # The escalation chain: the route's step that fires next, and when (None: no more).
    next_step: int | None = None
    step_due_at: datetime | None = _ts(nullable=True)
    # Set while a card still has to reach a chat surface: a sweep posts it if the
    # submitting process failed or died before it could.
    post_due_at: datetime | None = _ts(nullable=True)
    # The learning loop (migration 0004):
    # what the model saw (a string or chat messages), for training exports
    prompt: Any = Field(default=None, sa_column=Column(JSONColumn, nullable=True))
    ab_swapped: bool | None = None  # comparison: card shows b as "A" (hidden from reviewers)
    gold_expected: str | None = Field(default=None, max_length=16)  # gold: the known answer
    reserved_by: str | None = Field(default=None, max_length=200)  # queue: surface:user id
    reserved_until: datetime | None = _ts(nullable=True)
    # LLM drafting (migration 0005):
    task_id: str | None = Field(default=None, max_length=40)  # the task that drafted it
    revision: int = 1  # 2 after a reviewer's "reject and redraft", and so on
    # the drafts reviewers rejected and had redrafted, oldest first:
    # [{"number", "content", "reason", "rejected_by", "at"}]
    revisions: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONColumn, nullable=True)
    )
    redraft_until: datetime | None = _ts(nullable=True)  # lease of a redraft in progress
    confidence_source: str | None = Field(default=None, max_length=16)  # integrator | judge
    confidence_note: str | None = None  # the judge's rationale, or why there is no score
    aid: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONColumn, nullable=True))
    llm_input_tokens: int = 0
    llm_output_tokens: int = 0
    llm_cost: float = 0.0


class Decision(SQLModel, table=True):
    """One recorded decision. Never updated, never deleted."""

    __tablename__ = "decisions"
    # per-reviewer statistics and the daily cap (migration 0004)
    __table_args__ = (
        Index("ix_decisions_at", "at"),
        Index("ix_decisions_actor_at", "surface", "actor_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="items.id", index=True, max_length=40)
    action: str = Field(max_length=16)
    surface: str = Field(max_length=16)
    actor_id: str = Field(max_length=200)
    actor_name: str = Field(max_length=200)
    content_before: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONColumn, nullable=True)
    )
    content_after: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONColumn, nullable=True)
    )
    reason_code: str | None = Field(default=None, max_length=200)
    reason_text: str | None = None
    decisive: bool = False  # this decision settled the item
    at: datetime = _ts()
    since_posted_seconds: float = 0.0
    opened_seconds: float | None = None  # opened → decided, where the surface knows
    rubber_stamp: bool = False  # approved faster than the content could be read
    choice: str | None = Field(default=None, max_length=16)  # comparison: a | b | tie | both_bad


class Delivery(SQLModel, table=True):
    """An outbox row: one release or callback, delivered at least once with one key."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="items.id", index=True, max_length=40)
    purpose: str = Field(max_length=16)  # release | callback
    target_type: str = Field(max_length=16)
    url: str = Field(max_length=2000)
    idempotency_key: str = Field(max_length=200, unique=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSONColumn, nullable=False))
    state: str = Field(max_length=16)  # queued | delivered | failed
    attempts: int = 0
    max_attempts: int = 8
    next_attempt_at: datetime = _ts()
    claimed_until: datetime | None = _ts(nullable=True)
    last_error: str | None = None
    receipt: str | None = None
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(nullable=True)


class Post(SQLModel, table=True):
    """Where an item was posted: one row per surface message, for later updates."""

    __tablename__ = "posts"

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="items.id", index=True, max_length=40)
    surface: str = Field(max_length=16)
    channel: str | None = Field(default=None, max_length=200)
    ref: dict[str, Any] = Field(sa_column=Column(JSONColumn, nullable=False))
    posted_at: datetime = _ts()


class DeliveryAttempt(SQLModel, table=True):
    """One attempt at a delivery, kept for the item's history."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    item_id: str = Field(foreign_key="items.id", index=True, max_length=40)
    purpose: str = Field(max_length=16)
    attempt: int
    ok: bool
    detail: str
    at: datetime = _ts()


class ReviewerBase(SQLModel):
    name: str = Field(max_length=100, unique=True)


class Reviewer(ReviewerBase, table=True):
    """A web reviewer and the routes they may review (``["*"]``: all)."""

    __tablename__ = "reviewers"

    id: int | None = Field(default=None, primary_key=True)
    routes: list[str] = Field(sa_column=Column(JSONColumn, nullable=False))
    created_at: datetime = _ts()


class SignInLink(SQLModel, table=True):
    """A one-time sign-in link; only the token's digest is stored."""

    __tablename__ = "sign_in_links"

    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(max_length=64, unique=True)
    reviewer_id: int = Field(foreign_key="reviewers.id", index=True)
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)


class WebSession(SQLModel, table=True):
    """A signed-in browser; the cookie holds the token, the table its digest."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(max_length=64, unique=True)
    reviewer_id: int = Field(foreign_key="reviewers.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()


class StepRun(SQLModel, table=True):
    """One escalation step of one item: claimed by a sweep, then done. Unique per item
    and step, so no restart or second replica fires a step twice."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("item_id", "step", name="uq_step_runs_item_step"),
        Index("ix_step_runs_state_claimed", "state", "claimed_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="items.id", max_length=40)
    route: str = Field(max_length=100)
    step: int  # index in the route's escalation list
    action: str = Field(max_length=16)  # nudge | escalate | expire
    state: str = Field(max_length=16)  # claimed | done
    due_at: datetime = _ts()
    claimed_until: datetime | None = _ts(nullable=True)
    attempts: int = 1
    done_posts: list[int] = Field(
        default_factory=list, sa_column=Column(JSONColumn, nullable=False)
    )  # posts already reminded: a retried step skips them
    detail: str = ""
    fired_at: datetime | None = _ts(nullable=True)


class JobRun(SQLModel, table=True):
    """A scheduled job's run for one slot (e.g. a route's daily digest on one day); the
    replica that inserts the row runs the job."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_job_runs_job_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=200)
    slot: str = Field(max_length=100)
    at: datetime = _ts()


class Audit(SQLModel, table=True):
    """A blind human check of an automatic decision: posted without the automatic outcome,
    answered Correct or Wrong (optionally with a corrected version)."""

    __tablename__ = "audits"
    __table_args__ = (Index("ix_audits_route_decided", "route", "decided_at"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="items.id", index=True, max_length=40)
    route: str = Field(max_length=100)
    confidence: float | None = None
    auto_outcome: str = Field(max_length=16)  # auto_approved | auto_rejected
    verdict: str | None = Field(default=None, max_length=16)  # correct | wrong; None: open
    corrected: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONColumn, nullable=True)
    )
    surface: str | None = Field(default=None, max_length=16)
    actor_id: str | None = Field(default=None, max_length=200)
    actor_name: str | None = Field(default=None, max_length=200)
    posted_at: datetime = _ts()
    decided_at: datetime | None = _ts(nullable=True)
    # where the audit card was posted on a chat surface, to update it once answered
    ref: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONColumn, nullable=True))


class ItemOpen(SQLModel, table=True):
    """When a reviewer first opened an item's page (web): the start of their reading
    time, for ``Decision.opened_seconds`` and the rubber-stamp flag."""

    __tablename__ = "item_opens"
    __table_args__ = (UniqueConstraint("item_id", "reviewer", name="uq_item_opens_item_reviewer"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="items.id", max_length=40)
    reviewer: str = Field(max_length=200)  # surface:user id
    opened_at: datetime = _ts()


class ConfigChange(SQLModel, table=True):
    """A change signoff made to a route's settings by itself (e.g. the drift alarm raising
    ``auto_approve_at``); the latest per route and key is in force."""

    __tablename__ = "config_changes"
    __table_args__ = (Index("ix_config_changes_route_key", "route", "key", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    route: str = Field(max_length=100)
    key: str = Field(max_length=100)  # e.g. thresholds.auto_approve_at
    old_value: Any = Field(default=None, sa_column=Column(JSONColumn, nullable=True))
    new_value: Any = Field(default=None, sa_column=Column(JSONColumn, nullable=True))
    reason: str = ""
    actor: str = Field(max_length=200)
    at: datetime = _ts()


class Task(SQLModel, table=True):
    """A request to draft an item with a model (``POST /v1/tasks``): ``drafting`` until
    the item is submitted (``submitted``) or the model gave no usable draft (``failed``).
    ``lease_until`` bounds a drafting attempt: past it, another process takes it over."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("integrator_id", "idempotency_key", name="uq_tasks_idempotency"),
        Index("ix_tasks_state_lease", "state", "lease_until"),
        Index("ix_tasks_callback_due", "callback_state", "callback_due_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    integrator_id: int = Field(foreign_key="api_keys.id")
    route: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    title: str = Field(max_length=300)
    instructions: str
    context: Any = Field(default=None, sa_column=Column(JSONColumn, nullable=True))
    callback_url: str | None = Field(default=None, max_length=2000)
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSONColumn, nullable=False)
    )
    requested_by: str | None = Field(default=None, max_length=200)
    due_at: datetime | None = _ts(nullable=True)
    state: str = Field(max_length=16)  # drafting | submitted | failed
    item_id: str | None = Field(default=None, max_length=40)
    error: str | None = None
    attempts: int = 0  # drafting runs started (a crashed run is taken over)
    lease_until: datetime | None = _ts(nullable=True)
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)
    # the failure callback: none | queued | delivered | failed
    callback_state: str = Field(default="none", max_length=16)
    callback_attempts: int = 0
    callback_due_at: datetime | None = _ts(nullable=True)
    callback_error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class LlmCall(SQLModel, table=True):
    """One model call (all its attempts): what it was for, its tokens and its cost. The
    ledger behind per-item costs, the dashboard and each route's daily budget."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_route_at", "route", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    route: str = Field(max_length=100)
    item_id: str | None = Field(default=None, max_length=40, index=True)
    task_id: str | None = Field(default=None, max_length=40)
    purpose: str = Field(max_length=16)  # draft | redraft | judge | aid
    model: str = Field(max_length=200)
    ok: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    at: datetime = _ts()
