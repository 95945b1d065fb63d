"""The prompt of an item: what the model saw when it produced the draft.

An integrator may send it on submit as a string or as chat messages
(``[{"role": "system" | "user" | "assistant", "content": str}, ...]``); it is stored as
given (JSON) and comes back in the item, and the training exports (:mod:`bot.export`)
put it in front of the reviewed output so that every row is a complete example.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

MAX_PROMPT_TEXT = 200_000  # per message, like a kind's text fields; 1 MiB bounds the body
MAX_PROMPT_MESSAGES = 1_000

Role = Literal["system", "user", "assistant"]


class PromptMessage(BaseModel):
    """One chat message of a prompt, in OpenAI's chat format."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(max_length=MAX_PROMPT_TEXT)


Prompt = str | list[PromptMessage]

PROMPT_SHAPE = (
    'a non-empty string, or a non-empty list of chat messages {"role": "system" | "user" | '
    '"assistant", "content": str}'
)


def _checked(value: Any, handler: ValidatorFunctionWrapHandler) -> Prompt:
    # One error that names the expected shape and what is wrong, instead of one error
    # per member of the union.
    try:
        prompt: Prompt = handler(value)
    except ValidationError as exc:
        raise ValueError(f"must be {PROMPT_SHAPE}; {_what_is_wrong(value, exc)}") from None
    if not prompt:
        raise ValueError(f"must be {PROMPT_SHAPE}; got an empty one")
    if isinstance(prompt, list) and len(prompt) > MAX_PROMPT_MESSAGES:
        raise ValueError(f"has {len(prompt)} messages; at most {MAX_PROMPT_MESSAGES}")
    return prompt


def _what_is_wrong(value: Any, exc: ValidationError) -> str:
    if not isinstance(value, list):
        return f"got {_JSON_TYPES.get(type(value), type(value).__name__)}"
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if loc and loc[0] != "str":
            return f"{'.'.join(str(p) for p in loc[1:])}: {err['msg']}"
    return "got an invalid list"


_JSON_TYPES = {dict: "an object", int: "a number", float: "a number", bool: "a boolean"}


PromptField = Annotated[Prompt, WrapValidator(_checked)]
"""The ``prompt`` of :class:`bot.schemas.ItemCreate`: a string or chat messages."""


def stored_prompt(prompt: Prompt | None) -> str | list[dict[str, str]] | None:
    """The prompt as it is stored (plain JSON)."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    return [{"role": m.role, "content": m.content} for m in prompt]


def public_prompt(stored: Any) -> Prompt | None:
    """The stored prompt as the public model holds it (built without re-validation:
    stored prompts were validated on submit)."""
    if stored is None or isinstance(stored, str):
        return stored
    return [PromptMessage.model_construct(role=m["role"], content=m["content"]) for m in stored]
