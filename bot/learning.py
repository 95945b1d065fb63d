"""A route's learning-loop settings: audits of automatic decisions, the drift alarm,
gold items, reviewer fatigue and the review queue.

Configuration only; the behaviour lives in the modules that use it (audits,
calibration, drift, gold, fatigue, queue).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditSettings(_Strict):
    """Post this share of automatically decided items for a blind human check."""

    rate: float = Field(default=0.0, ge=0, le=1)
    surface: Literal["web", "slack", "discord"] = "web"
    channel: str | None = None  # the audit channel on a chat surface

    @model_validator(mode="after")
    def _channel(self) -> AuditSettings:
        if self.surface != "web" and not self.channel:
            raise ValueError(f"audit.channel: a {self.surface} audit needs a channel")
        return self


class DriftSettings(_Strict):
    """Alarm when the audited error of auto-approved items over the last ``window``
    audits exceeds ``target_error``; with ``auto_raise``, also raise ``auto_approve_at``
    by ``raise_by`` (once per alarm, recorded as a configuration change)."""

    target_error: float = Field(default=0.01, gt=0, lt=1)
    window: int = Field(default=200, ge=10)
    min_audits: int = Field(default=30, ge=1)
    auto_raise: bool = False
    raise_by: float = Field(default=0.01, gt=0, le=0.5)


class GoldSettings(_Strict):
    """Known-answer items mixed into the route at ``rate`` (per real item)."""

    file: str  # YAML or JSON list of {kind, title, content, expected: approve|reject}
    rate: float = Field(default=0.05, gt=0, le=1)


class ReviewerSettings(_Strict):
    """Reviewer fatigue and automation bias."""

    # an approval faster than this reading speed (characters per second) is a rubber stamp
    rubber_stamp_chars_per_second: float = Field(default=40.0, gt=0)
    daily_cap: int | None = Field(default=None, ge=1)  # decisions a reviewer makes a day
    reserve_minutes: float = Field(default=10.0, gt=0)  # how long `next` holds an item
