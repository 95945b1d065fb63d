"""Public shapes of drafting tasks (``POST /v1/tasks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bot.schemas import UsagePublic


class TaskCreate(BaseModel):
    """A task for the model: draft an item of ``kind`` for ``route`` following
    ``instructions`` about ``context`` (e.g. the customer's message, a ticket, a failing
    test and the files involved: a string or any JSON object)."""

    model_config = ConfigDict(extra="forbid")

    route: str = Field(min_length=1, max_length=100)
    kind: str = Field(min_length=1, max_length=32)
    instructions: str = Field(min_length=1, max_length=20_000)
    context: dict[str, Any] | str = ""
    title: str | None = Field(default=None, min_length=1, max_length=300)
    callback_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    requested_by: str | None = Field(default=None, max_length=200)
    due_at: AwareDatetime | None = None


class TaskPublic(BaseModel):
    """A task as the API answers it. ``state``: ``drafting``, then ``submitted`` (the
    draft is item ``item_id``, under review) or ``failed`` (``error`` says why)."""

    id: str
    route: str
    kind: str
    title: str
    state: str
    item_id: str | None
    error: str | None
    attempts: int
    usage: UsagePublic
    created_at: datetime
    updated_at: datetime
