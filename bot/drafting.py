"""LLM drafting as the core sees it: the ``Drafter`` Protocol, its value types, the prompts.

A drafter writes the content of an item of a kind (``draft``), writes it again after a
reviewer rejected it (``draft`` with ``feedback``), scores a draft against a rubric
(``judge``) and summarizes one for the reviewer (``summarize``). Adapters in
``adapters/llm/`` implement it over a model API; this module holds what does not depend
on one:

- :func:`schema_for` turns a kind's pydantic schema into a JSON schema that OpenAI's
  strict structured outputs accept (every property required, optional ones nullable,
  ``additionalProperties: false``, validation keywords moved into descriptions);
- :func:`parse_content` checks an answer with the kind's real validation
  (:func:`bot.kinds.validate_content`), so a schema-valid but wrong answer is caught;
- the chat messages of each call (:func:`draft_messages`, :func:`judge_messages`,
  :func:`summary_messages`, :func:`correction_message`) and the parsers of the answers;
- :class:`PriceTable`, which turns token counts into US dollars.

Parsers raise :class:`~bot.errors.InvalidInput` naming the bad field; an adapter asks the
model once more with that message and raises :class:`DraftFailed` when the second answer
is no better.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.errors import ConfigError, InvalidInput, SignoffError
from bot.kinds import get_kind, validate_content

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


# ---------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call (all its attempts) used, and what they cost in US dollars."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost=self.cost + other.cost,
        )


@dataclass(frozen=True, slots=True)
class Revision:
    """An earlier draft a reviewer rejected, and their reason, for a redraft."""

    content: Mapping[str, Any]
    reason: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated draft.

    ``content`` passed the kind's validation (defaults filled in). ``prompt`` is the
    conversation that asks for it (system, user, and for a redraft the earlier drafts and
    reasons), without a correction round: with ``content`` it is a clean training example.
    ``attempts`` counts the model's answers (2 when the first was invalid); ``usage``
    covers all of them.
    """

    content: dict[str, Any]
    prompt: list[Message]
    usage: Usage
    attempts: int
    model: str = ""


@dataclass(frozen=True, slots=True)
class Judgement:
    """How well a draft meets a rubric: ``score`` from 0 (not at all) to 1 (fully)."""

    score: float
    rationale: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class Aid:
    """A reviewer's aid: a one-line summary and, for a code change, the spots to check."""

    summary: str
    risky_spots: tuple[str, ...]
    usage: Usage


class DraftFailed(SignoffError):
    """The model gave no usable answer: invalid twice, refused, timed out, or the API failed.

    The message names what was wrong (for an invalid answer, the field and the problem).
    ``usage`` is what the failed call spent; ``retryable`` says whether the same call may
    succeed later (a timeout, a rate limit, a server error) rather than needing a change.
    """

    code = "draft_failed"

    def __init__(
        self, message: str, *, usage: Usage | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.usage = usage if usage is not None else Usage()
        self.retryable = retryable


class Drafter(Protocol):
    """Writes, judges and summarizes drafts with a language model."""

    async def draft(
        self,
        *,
        kind: str,
        instructions: str,
        context: Mapping[str, Any] | str,
        feedback: Sequence[Revision] = (),
    ) -> Draft:
        """A draft of ``kind`` following ``instructions`` about ``context``.

        With ``feedback`` (oldest first) this is a redraft: the model sees each rejected
        draft and the reviewer's reason. Raises InvalidInput for an unknown kind and
        DraftFailed when no valid draft came back."""
        ...

    async def judge(self, *, content: Mapping[str, Any], kind: str, rubric: str) -> Judgement:
        """Score ``content`` of ``kind`` against ``rubric`` (0..1) with a one-sentence
        rationale. Raises DraftFailed when no usable answer came back."""
        ...

    async def summarize(self, *, content: Mapping[str, Any], kind: str) -> Aid:
        """A one-line summary of ``content`` for a reviewer; for ``code_change`` also the
        risky spots of the diff. Raises DraftFailed when no usable answer came back."""
        ...


# ---------------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per one million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model name, as configured (a local server's model costs 0)."""

    prices: Mapping[str, Price] = field(default_factory=dict)

    def price(self, model: str) -> Price:
        """The model's price; ConfigError naming the known models when there is none."""
        try:
            return self.prices[model]
        except KeyError:
            known = ", ".join(sorted(self.prices)) or "none"
            raise ConfigError(f"no price for model {model!r} (priced: {known})") from None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """US dollars for the tokens on ``model``."""
        p = self.price(model)
        return (input_tokens * p.input_per_million + output_tokens * p.output_per_million) / (
            1_000_000
        )

    def usage(self, model: str, input_tokens: int, output_tokens: int) -> Usage:
        """The tokens with their cost."""
        return Usage(input_tokens, output_tokens, self.cost(model, input_tokens, output_tokens))


# ---------------------------------------------------------------------- schema of a kind

# What a field means, beyond its type: shown to the model in the schema's descriptions
# and the system prompt. The kind's validation (bot.kinds) stays the judge.
FIELD_NOTES: dict[str, dict[str, str]] = {
    "email": {
        "to": "recipient e-mail addresses (local@domain.tld)",
        "cc": "e-mail addresses to copy",
        "subject": "the subject line",
        "body": "the plain-text body",
        "html": "an HTML version of the body",
    },
    "code_change": {
        "repository": "the repository, as given in the context",
        "base": "the branch the change applies to",
        "title": "the pull request title",
        "description": "the pull request description",
        "diff": "a unified diff (with ---/+++ file headers and @@ hunks)",
    },
    "message": {"text": "the message text"},
    "decision": {
        "question": "the question to decide",
        "options": "the possible answers",
        "proposed": "the proposed answer: exactly one of options",
    },
    "label": {"text": "the text being labelled", "labels": "the labels chosen"},
}

# Keywords OpenAI's strict mode accepts that schema_for keeps as they are.
_KEPT = frozenset({"type", "enum", "const", "description", "$ref"})
# Validation keywords moved into the description (strict mode rejects some, and local
# servers' grammars support fewer still); the kind's validation enforces them.
_PHRASES: dict[str, str] = {
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "more than {}",
    "exclusiveMaximum": "less than {}",
    "multipleOf": "a multiple of {}",
    "pattern": "matching the regular expression {}",
    "format": "in {} format",
}


def schema_for(kind: str) -> dict[str, Any]:
    """The kind's content schema as a strict structured-output JSON schema (a new copy).

    Every property is required and every object closed (``additionalProperties:
    false``); a field the kind may omit becomes nullable (``anyOf [..., null]``; null
    means "use the default"). ``title``, ``default`` and validation keywords such as
    ``minLength`` are dropped, the latter restated in the description."""
    return copy.deepcopy(_strict_schema(kind))


@functools.cache
def _strict_schema(kind: str) -> dict[str, Any]:
    k = get_kind(kind)
    schema = _strict(k.schema.model_json_schema(), notes=FIELD_NOTES.get(kind, {}))
    schema.pop("description", None)  # the model class's docstring, written for developers
    return schema


def _strict(node: Mapping[str, Any], *, notes: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    said: list[str] = []
    for key, value in node.items():
        if key == "properties":
            props: dict[str, Any] = {}
            optional = set(value) - set(node.get("required", ()))
            for name, sub in value.items():
                prop = _strict(sub)
                note = (notes or {}).get(name)
                if note:
                    prop["description"] = _join(note, prop.get("description"))
                if name in optional:
                    prop = _nullable(prop, sub)
                props[name] = prop
            out["properties"] = props
        elif key == "items" and isinstance(value, Mapping):
            out["items"] = _strict(value)
        elif key in ("anyOf", "oneOf"):
            out["anyOf"] = [_strict(v) for v in value]
        elif key == "allOf" and len(value) == 1:
            out.update(_strict(value[0]))
        elif key == "$defs":
            out["$defs"] = {name: _strict(sub) for name, sub in value.items()}
        elif key in _KEPT:
            out[key] = value
        elif key in _PHRASES:
            said.append(_phrase(key, value))
        # anything else (title, default, examples, required, additionalProperties) is
        # dropped or rebuilt below
    if said:
        out["description"] = _join(out.get("description"), "; ".join(said))
    if out.get("type") == "object" or "properties" in out:
        out["type"] = "object"
        out.setdefault("properties", {})
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def _nullable(prop: dict[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    default = raw.get("default")
    hint = "null for the default" + (
        f" ({json.dumps(default)})" if default not in (None, "") else ""
    )
    description = _join(prop.pop("description", None), hint)
    if "anyOf" in prop:
        branches = list(prop["anyOf"])
        if {"type": "null"} not in branches:
            branches.append({"type": "null"})
        return {**prop, "anyOf": branches, "description": description}
    return {"anyOf": [prop, {"type": "null"}], "description": description}


def _phrase(key: str, value: Any) -> str:
    if key == "minLength" and value == 1:
        return "not empty"
    if key == "minItems" and value == 1:
        return "at least 1 item"
    return _PHRASES[key].format(value)


def _join(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


# ---------------------------------------------------------------------- answers


def parse_content(kind: str, text: str) -> dict[str, Any]:
    """The model's answer for ``kind`` as validated content.

    Nulls in optional fields mean "the default" and are dropped before the kind's
    validation. InvalidInput names the field and the problem."""
    k = get_kind(kind)
    data = _json_object(text)
    required = _required(kind)
    data = {key: value for key, value in data.items() if value is not None or key in required}
    return validate_content(k, data, field="content")


@functools.cache
def _required(kind: str) -> frozenset[str]:
    return frozenset(get_kind(kind).schema.model_json_schema().get("required", ()))


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the answer is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the answer must be a JSON object, not {type(data).__name__}")
    return data


# ---------------------------------------------------------------------- prompts


def draft_messages(
    *,
    kind: str,
    instructions: str,
    context: Mapping[str, Any] | str,
    feedback: Sequence[Revision] = (),
) -> list[Message]:
    """The conversation asking for a draft of ``kind``; for a redraft, each earlier draft
    (as the assistant's answer) followed by the reviewer's reason."""
    get_kind(kind)
    messages = [
        {"role": "system", "content": _draft_system(kind)},
        {"role": "user", "content": _draft_request(instructions, context)},
    ]
    for revision in feedback:
        messages.append({"role": "assistant", "content": _dump(revision.content)})
        messages.append(
            {
                "role": "user",
                "content": f"The reviewer rejected this draft: {_sentence(revision.reason)}. "
                "Write a better one.",
            }
        )
    return messages


def correction_message(problem: str) -> Message:
    """What the model is told after an invalid answer, before it tries once more."""
    return {
        "role": "user",
        "content": f"That answer is invalid: {problem}. "
        "Answer again with the complete, corrected JSON object.",
    }


def _draft_system(kind: str) -> str:
    schema = _strict_schema(kind)
    lines = [
        f"You draft an item of kind {kind!r} for signoff, where a human reviewer will approve, "
        "edit or reject it before anything is sent.",
        "Follow the instructions, use only facts from the context, and answer with one "
        "JSON object with exactly these fields:",
    ]
    for name, prop in schema["properties"].items():
        lines.append(f"- {name} ({_type_name(prop)}): {prop.get('description', '')}".rstrip(": "))
    return "\n".join(lines)


def _type_name(prop: Mapping[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_type_name(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type_name(prop.get('items', {}))}"
    return str(prop.get("type", "value"))


def _draft_request(instructions: str, context: Mapping[str, Any] | str) -> str:
    ctx = context if isinstance(context, str) else _dump(context)
    return f"Instructions:\n{instructions.strip()}\n\nContext:\n{ctx.strip()}"


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------- judge


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {
            "type": "number",
            "description": "from 0 (fails the rubric) to 1 (fully meets it)",
        },
        "rationale": {"type": "string", "description": "one sentence: why this score"},
    },
    "required": ["score", "rationale"],
    "additionalProperties": False,
}


def judge_messages(*, content: Mapping[str, Any], kind: str, rubric: str) -> list[Message]:
    """The conversation asking for a score of ``content`` against ``rubric``."""
    return [
        {
            "role": "system",
            "content": f"You check a draft of kind {kind!r} against a rubric before a human "
            "reviews it. Answer with one JSON object: "
            '{"score": <number from 0 (fails the rubric) to 1 (fully meets it)>, '
            '"rationale": "<one sentence>"}.',
        },
        {"role": "user", "content": f"Rubric:\n{rubric.strip()}\n\nDraft:\n{_dump(content)}"},
    ]


def parse_judgement(text: str) -> tuple[float, str]:
    """Score and rationale from a judge's answer; InvalidInput names what is wrong."""
    data = _json_object(text)
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise InvalidInput("must be a number from 0 to 1", field="score")
    if not math.isfinite(score) or not 0 <= score <= 1:
        raise InvalidInput(f"must be from 0 to 1, not {score}", field="score")
    rationale = data.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        raise InvalidInput("must be a sentence", field="rationale")
    return float(score), _one_line(rationale)


# ---------------------------------------------------------------------- summary


SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "one line: what this draft does"},
        "risky_spots": {
            "type": "array",
            "items": {"type": "string"},
            "description": "for a code change, the places a reviewer should check "
            "(file and what); otherwise empty",
        },
    },
    "required": ["summary", "risky_spots"],
    "additionalProperties": False,
}


def summary_messages(*, content: Mapping[str, Any], kind: str) -> list[Message]:
    """The conversation asking for a one-line summary (and a code change's risky spots)."""
    spots = (
        "list the risky spots of the diff: each a short note naming the file and what a "
        "reviewer should check there (error handling, security, data loss, behaviour "
        "changes)"
        if kind == "code_change"
        else "leave risky_spots empty"
    )
    return [
        {
            "role": "system",
            "content": f"You help a human review a draft of kind {kind!r}. Summarize what it does "
            f"in one line of at most 120 characters, and {spots}. Answer with one JSON "
            'object: {"summary": "<one line>", "risky_spots": ["..."]}.',
        },
        {"role": "user", "content": _dump(content)},
    ]


def parse_aid(text: str, *, kind: str) -> tuple[str, tuple[str, ...]]:
    """Summary and risky spots from the answer (spots kept for ``code_change`` only)."""
    data = _json_object(text)
    summary = data.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise InvalidInput("must be one line of text", field="summary")
    spots = data.get("risky_spots", [])
    if not isinstance(spots, list) or not all(isinstance(s, str) for s in spots):
        raise InvalidInput("must be a list of strings", field="risky_spots")
    kept = tuple(_one_line(s) for s in spots if s.strip()) if kind == "code_change" else ()
    return _one_line(summary), kept


def _sentence(text: str) -> str:
    return text.strip().rstrip(".")


def _one_line(text: str) -> str:
    return " ".join(text.split())
