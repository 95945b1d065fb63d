"""Item kinds: the content schema of each, its editable fields and its review card.

The kind names and field names are a public contract (DESIGN §3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bot.card import CardField
from bot.errors import InvalidInput

MAX_TEXT = 200_000  # generous; the request body limit (1 MiB) bounds it anyway

# A pragmatic addr-spec check (local@domain.tld, no spaces, no angle brackets): the
# mail server is the judge of deliverability; this catches what is plainly not an address.
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]+$")


def _address(value: str) -> str:
    if len(value) > 254 or not _ADDRESS.match(value):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


EmailAddress = Annotated[str, AfterValidator(_address)]


class _Content(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class EmailContent(_Content):
    to: list[EmailAddress] = Field(min_length=1)
    cc: list[EmailAddress] = Field(default_factory=list)
    subject: str = Field(min_length=1, max_length=998)
    body: str = Field(min_length=1, max_length=MAX_TEXT)
    html: str | None = Field(default=None, max_length=MAX_TEXT)


class CodeChangeContent(_Content):
    repository: str = Field(min_length=1)
    base: str = Field(default="main", min_length=1)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=MAX_TEXT)
    diff: str = Field(min_length=1, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _diff_is_unified(self) -> CodeChangeContent:
        lines = self.diff.splitlines()
        if not any(line.startswith("@@") for line in lines) or not any(
            line.startswith(("--- ", "+++ ")) for line in lines
        ):
            raise ValueError("diff must be a unified diff (with ---/+++ headers and @@ hunks)")
        return self


class MessageContent(_Content):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class DecisionContent(_Content):
    question: str = Field(min_length=1)
    options: list[str] = Field(min_length=2)
    proposed: str

    @model_validator(mode="after")
    def _proposed_is_an_option(self) -> DecisionContent:
        if self.proposed not in self.options:
            raise ValueError(f"proposed {self.proposed!r} is not one of options")
        return self


class LabelContent(_Content):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    labels: list[str] = Field(min_length=1)


class ComparisonContent(_Content):
    """A prompt and two candidate outputs; the card shows them in a hidden random order."""

    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    a: str = Field(min_length=1, max_length=MAX_TEXT)
    b: str = Field(min_length=1, max_length=MAX_TEXT)


class QuestionContent(_Content):
    """A free-text question for a person; answering it is an edit of ``answer``."""

    question: str = Field(min_length=1, max_length=MAX_TEXT)
    answer: str | None = Field(default=None, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _answer_has_text(self) -> QuestionContent:
        if self.answer is not None and not self.answer.strip():
            raise ValueError("answer must not be empty")
        return self


@dataclass(frozen=True, slots=True)
class Kind:
    """One item kind: its schema, the fields a reviewer may edit, and its card parts."""

    name: str
    schema: type[_Content]
    editable: tuple[str, ...]
    card_parts: Callable[[Mapping[str, Any]], _CardParts]


@dataclass(frozen=True, slots=True)
class _CardParts:
    fields: tuple[CardField, ...] = ()
    body: str | None = None
    diff: str | None = None
    options: tuple[str, ...] = ()
    sections: tuple[CardField, ...] = ()


def _email_card(c: Mapping[str, Any]) -> _CardParts:
    fields = [CardField("To", ", ".join(c["to"]))]
    if c.get("cc"):
        fields.append(CardField("Cc", ", ".join(c["cc"])))
    fields.append(CardField("Subject", c["subject"], short=False))
    return _CardParts(fields=tuple(fields), body=c["body"])


def _code_card(c: Mapping[str, Any]) -> _CardParts:
    return _CardParts(
        fields=(
            CardField("Repository", c["repository"]),
            CardField("Base", c["base"]),
            CardField("Title", c["title"], short=False),
        ),
        body=c.get("description") or None,
        diff=c["diff"],
    )


def _message_card(c: Mapping[str, Any]) -> _CardParts:
    return _CardParts(body=c["text"])


def _decision_card(c: Mapping[str, Any]) -> _CardParts:
    others = tuple(o for o in c["options"] if o != c["proposed"])
    return _CardParts(
        fields=(CardField("Proposed", c["proposed"], short=False),),
        body=c["question"],
        options=(c["proposed"], *others),
    )


def _label_card(c: Mapping[str, Any]) -> _CardParts:
    return _CardParts(
        fields=(CardField("Labels", ", ".join(c["labels"]), short=False),), body=c["text"]
    )


def _question_card(c: Mapping[str, Any]) -> _CardParts:
    answer = c.get("answer")
    fields = (CardField("Answer", answer, short=False),) if answer else ()
    return _CardParts(fields=fields, body=c["question"])


def _comparison_card(c: Mapping[str, Any]) -> _CardParts:
    # ``c`` is in display order (bot.ab.shown): "a" is what the card labels A
    return _CardParts(
        sections=(
            CardField("Prompt", c["prompt"], short=False),
            CardField("A", c["a"], short=False),
            CardField("B", c["b"], short=False),
        )
    )


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("email", EmailContent, ("to", "cc", "subject", "body", "html"), _email_card),
        Kind(
            "code_change",
            CodeChangeContent,
            ("title", "description", "diff"),
            _code_card,
        ),
        Kind("message", MessageContent, ("text",), _message_card),
        Kind("decision", DecisionContent, ("proposed",), _decision_card),
        Kind("label", LabelContent, ("labels",), _label_card),
        Kind("comparison", ComparisonContent, (), _comparison_card),  # decided by a choice
        Kind("question", QuestionContent, ("answer",), _question_card),  # answered by an edit
    )
}


# How editors show fields: lists one item a line, long texts as multi-line boxes.
LIST_FIELDS = frozenset({"to", "cc", "labels"})
LONG_FIELDS = frozenset({"body", "html", "description", "diff", "text", "answer"})


def get_kind(name: str) -> Kind:
    """The kind called ``name``; InvalidInput naming the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown kind {name!r}; expected one of {', '.join(KINDS)}", field="kind"
        ) from None


def validate_content(kind: Kind, content: Any, *, field: str = "content") -> dict[str, Any]:
    """Validate ``content`` against the kind's schema; the error names the bad field."""
    if not isinstance(content, dict):
        raise InvalidInput(f"must be an object for kind {kind.name!r}", field=field)
    try:
        model = kind.schema.model_validate(content)
    except ValidationError as exc:
        raise InvalidInput(_first_error(exc, prefix=field)) from None
    return model.model_dump(mode="json")


def validate_edit(
    kind: Kind, original: Mapping[str, Any], edited: Any, *, field: str = "content"
) -> dict[str, Any]:
    """Validate an edit: a full or partial content where only editable fields change."""
    if not isinstance(edited, dict):
        raise InvalidInput(f"must be an object for kind {kind.name!r}", field=field)
    for key, value in edited.items():
        if key not in kind.editable and original.get(key) != value:
            raise InvalidInput(
                f"is not editable for kind {kind.name!r} (editable: {', '.join(kind.editable)})",
                field=f"{field}.{key}",
            )
    return validate_content(kind, {**original, **edited}, field=field)


def _first_error(exc: ValidationError, *, prefix: str) -> str:
    messages = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]))
        messages.append(f"{loc}: {err['msg']}")
    return "; ".join(messages)
