"""The JSON shapes of the HumanLayer API, as the ``humanlayer`` SDK (0.7.9) sends and
reads them (``humanlayer/core/models.py``).

Requests are read leniently (fields this server does not know are ignored, so a newer
SDK keeps working) and checked where signoff relies on a value: ids and names have
bounded lengths, reject options have unique names. ``channel`` and ``state`` are kept as
sent and answered back unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

CALL_ID_MAX = 200  # call_id and run_id; the SDK makes ``call-`` plus 11 characters


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ResponseOption(_Shape):
    """One of the answers offered to the human (``reject_options`` of a function call)."""

    name: str = Field(min_length=1, max_length=100)
    title: str | None = None
    description: str | None = None
    prompt_fill: str | None = None
    interactive: bool = False


def _unique_names(options: list[ResponseOption] | None) -> list[ResponseOption] | None:
    if options:
        names = [o.name for o in options]
        if len(names) != len(set(names)):
            raise ValueError("option names must be unique")
    return options


# pydantic's mypy plugin gives __init__ a ``**kwargs`` that the field ``kwargs`` redefines
class FunctionCallSpec(_Shape):  # type: ignore[no-redef]
    fn: str = Field(min_length=1, max_length=200)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    channel: dict[str, Any] | None = None
    reject_options: list[ResponseOption] | None = None
    state: dict[str, Any] | None = None

    @field_validator("reject_options")
    @classmethod
    def _unique(cls, value: list[ResponseOption] | None) -> list[ResponseOption] | None:
        return _unique_names(value)


class FunctionCallStatus(_Shape):
    requested_at: datetime | None = None
    responded_at: datetime | None = None
    approved: bool | None = None
    comment: str | None = None
    reject_option_name: str | None = None
    slack_message_ts: str | None = None


class FunctionCall(_Shape):
    run_id: str = Field(min_length=1, max_length=CALL_ID_MAX)
    call_id: str = Field(min_length=1, max_length=CALL_ID_MAX)
    spec: FunctionCallSpec
    status: FunctionCallStatus | None = None


class HumanContactSpec(_Shape):
    msg: str = Field(min_length=1)
    subject: str | None = None
    channel: dict[str, Any] | None = None
    response_options: list[ResponseOption] | None = None
    state: dict[str, Any] | None = None

    @field_validator("response_options")
    @classmethod
    def _unique(cls, value: list[ResponseOption] | None) -> list[ResponseOption] | None:
        return _unique_names(value)


class HumanContactStatus(_Shape):
    requested_at: datetime | None = None
    responded_at: datetime | None = None
    response: str | None = None
    response_option_name: str | None = None


class HumanContact(_Shape):
    run_id: str = Field(min_length=1, max_length=CALL_ID_MAX)
    call_id: str = Field(min_length=1, max_length=CALL_ID_MAX)
    spec: HumanContactSpec
    status: HumanContactStatus | None = None


class Escalation(_Shape):
    """``escalate_email``: a message for whoever the request is escalated to."""

    escalation_msg: str = Field(min_length=1, max_length=3000)
    additional_recipients: list[dict[str, Any]] | None = None
    channel: dict[str, Any] | None = None
