"""Escalation chains: what a route does about an item nobody has decided, and when.

A route's ``escalation`` is an ordered list of steps, each ``after`` a duration since the
item was posted: ``nudge`` (remind the reviewers in the card's thread), ``escalate``
(post the card to an escalation channel and/or mention someone on call) and ``expire``
(settle the item as ``expired``; ``on_expire`` says what that means for its release).
``working_hours`` holds nudges and escalations back to the next working minute.

This module is pure: it validates the configuration and computes due times. The sweep
(:mod:`bot.sweep`) claims and carries out the steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: str | int | float) -> timedelta:
    """``"30m"``, ``"2h"``, ``"1d12h"``, ``"90s"``, or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a string like 30m, 4h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 30m, 4h, 1d12h)")
        seconds = float(sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form: ``30 min``, ``4 h``, ``24 h``, ``2 d 12 h``."""
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    days, rest = divmod(seconds, 86400)
    hours = round(rest / 3600)
    if hours == 24:
        days, hours = days + 1, 0
    if not days:
        return f"{hours} h"
    return f"{days} d" + (f" {hours} h" if hours else "")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Mentions = dict[Literal["web", "slack", "discord"], list[str]]


class EscalationStep(_Strict):
    """One step of a route's chain."""

    after: timedelta
    do: Literal["nudge", "escalate", "expire"]
    channel: str | None = None  # escalate: where the card is posted
    surface: Literal["slack", "discord"] | None = None  # escalate: the channel's platform
    mention: Mentions | None = None  # nudge: instead of the reviewers; escalate: on call
    on_expire: Literal["reject", "approve", "keep"] | None = None

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, timedelta):
            return value
        if not isinstance(value, str | int | float):
            raise ValueError("a duration is a string like 30m, 4h or 1d")
        return parse_duration(value)

    @model_validator(mode="after")
    def _fits(self) -> EscalationStep:
        if self.do == "escalate" and not (self.channel or self.mention):
            raise ValueError("an escalate step needs a channel, a mention, or both")
        if self.do != "escalate" and (self.channel or self.surface):
            raise ValueError(f"channel and surface belong to escalate steps, not {self.do}")
        if self.do != "expire" and self.on_expire is not None:
            raise ValueError("on_expire belongs to the expire step")
        if self.do == "expire" and self.mention is not None:
            raise ValueError("an expire step mentions nobody")
        return self

    @property
    def expiry_effect(self) -> Literal["reject", "approve", "keep"]:
        return self.on_expire or "reject"


class WorkingHours(_Strict):
    """When people work, in the route's timezone; reminders wait for it."""

    timezone: str = "UTC"
    days: list[str] = Field(default_factory=lambda: list(DAYS[:5]))
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name)") from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower()[:3] for d in value]
        bad = [d for d, short in zip(value, days, strict=True) if short not in DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {', '.join(bad)}; use mon … sun")
        if not days:
            raise ValueError("at least one working day")
        return days

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError("end must be after start (working hours within one day)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_working_minute(self, at: datetime) -> datetime:
        """``at`` if it is within working hours, else the start of the next working day."""
        local = at.astimezone(self.zone)
        weekdays = {DAYS.index(d) for d in self.days}
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in weekdays:
                continue
            opens = datetime.combine(day, self.start, tzinfo=self.zone)
            closes = datetime.combine(day, self.end, tzinfo=self.zone)
            if offset == 0 and opens <= local < closes:
                return at
            if local < opens:
                return opens.astimezone(UTC)
        raise AssertionError("a week always has a working day")  # pragma: no cover


class DigestSettings(_Strict):
    """Fewer, better messages: a digest instead of many nudges, and one a day."""

    threshold: int = Field(default=5, ge=1)  # more nudges than this in one channel: a digest
    daily_at: time | None = None  # route timezone; unset: no daily digest
    expiring_within: timedelta = timedelta(hours=24)

    @field_validator("expiring_within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, timedelta):
            return value
        if not isinstance(value, str | int | float):
            raise ValueError("a duration is a string like 30m, 4h or 1d")
        return parse_duration(value)


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step of one item's chain: its index in the route's list and when it is due."""

    index: int
    due: datetime


def plan(
    steps: list[EscalationStep],
    *,
    posted_at: datetime,
    hours: WorkingHours | None,
    expire_in_working_hours: bool = False,
) -> list[PlannedStep]:
    """The chain of one item, in the order it fires (by due time, then list order).

    Working hours shift nudges and escalations (and expiry if the route says so) to the
    next working minute; the order can then differ from the list's.
    """
    planned = []
    for index, step in enumerate(steps):
        due = posted_at + step.after
        if hours is not None and (step.do != "expire" or expire_in_working_hours):
            due = hours.next_working_minute(due)
        planned.append(PlannedStep(index=index, due=due))
    return sorted(planned, key=lambda p: (p.due, p.index))


def following(
    steps: list[EscalationStep],
    *,
    posted_at: datetime,
    hours: WorkingHours | None,
    expire_in_working_hours: bool,
    after_index: int | None,
) -> PlannedStep | None:
    """The step that fires after the one with list index ``after_index`` (None: the
    first), or None when the chain is done."""
    chain = plan(
        steps, posted_at=posted_at, hours=hours, expire_in_working_hours=expire_in_working_hours
    )
    if after_index is None:
        return chain[0] if chain else None
    positions = [p.index for p in chain]
    if after_index not in positions:
        return None
    at = positions.index(after_index)
    return chain[at + 1] if at + 1 < len(chain) else None
