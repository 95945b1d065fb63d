"""Public shapes of the integrator API (DESIGN §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bot.prompts import Prompt, PromptField


class ItemCreate(BaseModel):
    """An item as an integrator submits it."""

    model_config = ConfigDict(extra="forbid")

    route: str = Field(min_length=1, max_length=100)
    kind: str = Field(min_length=1, max_length=32)
    title: str = Field(min_length=1, max_length=300)
    content: dict[str, Any]
    confidence: float | None = Field(default=None, ge=0, le=1)
    callback_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    requested_by: str | None = Field(default=None, max_length=200)
    due_at: AwareDatetime | None = None
    prompt: PromptField | None = None  # what the model saw; for training exports


class DecisionPublic(BaseModel):
    action: str
    surface: str
    actor_id: str
    actor_name: str
    reason_code: str | None
    reason_text: str | None
    at: datetime
    since_posted_seconds: float
    content_after: dict[str, Any] | None = None
    choice: str | None = None  # a comparison's verdict, for its candidate: a, b, tie, both_bad


class RevisionPublic(BaseModel):
    """A draft a reviewer rejected and had redrafted (``Reject and redraft``)."""

    number: int
    content: dict[str, Any]
    reason: str | None
    rejected_by: str | None
    at: datetime


class AidPublic(BaseModel):
    """Machine-written help for reviewers: a one-line summary, a code change's risky spots."""

    summary: str
    risky_spots: list[str] = Field(default_factory=list)
    machine_written: bool = True


class UsagePublic(BaseModel):
    """Model tokens spent on an item (drafts, redrafts, judging, aids) and their cost."""

    input_tokens: int
    output_tokens: int
    cost_usd: float


class ItemPublic(BaseModel):
    """An item as the API answers it: what was submitted plus its review state."""

    id: str
    route: str
    kind: str
    title: str
    content: dict[str, Any]
    final_content: dict[str, Any] | None
    prompt: Prompt | None = None
    confidence: float | None
    callback_url: str | None
    metadata: dict[str, Any]
    requested_by: str | None
    state: str
    outcome: str | None
    release_state: str
    release_error: str | None
    approvals: int
    quorum: int
    decisions: list[DecisionPublic]
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    due_at: datetime | None
    # LLM drafting (bot/tasks.py, bot/redraft.py, bot/assist.py)
    confidence_source: str | None = None  # "integrator" or "judge"
    confidence_note: str | None = None  # the judge's rationale, or why there is no score
    task_id: str | None = None  # the task that drafted this item
    revision: int = 1
    revisions: list[RevisionPublic] = Field(default_factory=list)  # rejected drafts
    redrafting: bool = False  # a new revision is being drafted
    aid: AidPublic | None = None
    usage: UsagePublic | None = None
    # a comparison's display order (bot/ab.py): for drawing its card; never serialised
    ab_swapped: bool | None = Field(default=None, exclude=True)


class ItemPage(BaseModel):
    items: list[ItemPublic]
    next_cursor: str | None


class ApiError(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ApiError
