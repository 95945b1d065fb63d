"""Kind schemas, edits limited to editable fields, and the card of each kind."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import InvalidInput
from bot.kinds import KINDS, get_kind, validate_content, validate_edit

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"

VALID: dict[str, dict[str, Any]] = {
    "email": {"to": ["jane@example.com"], "subject": "Hi", "body": "Hello"},
    "code_change": {"repository": "org/app", "title": "Fix", "diff": DIFF},
    "message": {"text": "hello"},
    "decision": {"question": "Ship?", "options": ["yes", "no"], "proposed": "yes"},
    "label": {"text": "invoice wrong", "labels": ["billing"]},
    "comparison": {"prompt": "Greet Jane", "a": "Hi Jane", "b": "Hello Jane"},
    "question": {"question": "Which plan is Jane on?", "answer": None},
}


def test_the_kinds_of_the_contract() -> None:
    assert set(KINDS) == {
        "email",
        "code_change",
        "message",
        "decision",
        "label",
        "comparison",
        "question",
    }


@pytest.mark.parametrize("kind", VALID)
def test_valid_content_passes(kind: str) -> None:
    out = validate_content(get_kind(kind), VALID[kind])
    assert out.items() >= VALID[kind].items()


@pytest.mark.parametrize(
    ("kind", "content", "field"),
    [
        ("email", {"to": ["not-an-address"], "subject": "s", "body": "b"}, "content.to.0"),
        ("email", {"to": [], "subject": "s", "body": "b"}, "content.to"),
        ("email", {"to": ["a@example.com"], "body": "b"}, "content.subject"),
        ("email", {"to": ["a@example.com"], "subject": "s", "body": "b", "bcc": []}, "content.bcc"),
        ("code_change", {"repository": "r", "title": "t", "diff": "not a diff"}, "content"),
        ("decision", {"question": "q", "options": ["a", "b"], "proposed": "c"}, "content"),
        ("label", {"text": "t", "labels": []}, "content.labels"),
        ("message", {"text": 3}, "content.text"),
    ],
)
def test_invalid_content_names_the_field(kind: str, content: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_content(get_kind(kind), content)
    assert err.value.message.startswith(field + ":")


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="kind: unknown kind 'emial'; expected one of email"):
        get_kind("emial")


def test_edit_changes_editable_fields_only() -> None:
    kind = get_kind("code_change")
    original = validate_content(kind, VALID["code_change"])
    edited = validate_edit(kind, original, {"title": "Better title"})
    assert edited["title"] == "Better title" and edited["diff"] == original["diff"]
    with pytest.raises(InvalidInput, match=r"content\.repository: is not editable"):
        validate_edit(kind, original, {"repository": "other/repo"})


def test_edit_is_validated_like_new_content() -> None:
    kind = get_kind("email")
    original = validate_content(kind, VALID["email"])
    with pytest.raises(InvalidInput, match=r"content\.subject"):
        validate_edit(kind, original, {"subject": ""})


def test_cards_show_each_kind() -> None:
    email = get_kind("email").card_parts(validate_content(get_kind("email"), VALID["email"]))
    assert [f.label for f in email.fields] == ["To", "Subject"] and email.body == "Hello"
    code = get_kind("code_change").card_parts(
        validate_content(get_kind("code_change"), VALID["code_change"])
    )
    assert code.diff == DIFF
    decision = get_kind("decision").card_parts(VALID["decision"])
    assert decision.options == ("yes", "no") and decision.body == "Ship?"
