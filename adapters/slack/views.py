"""The Edit and Reject (or Reject and redraft) modals, and reading their submissions back."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.blocks import escape
from bot.kinds import LIST_FIELDS, LONG_FIELDS, get_kind
from bot.schemas import ItemPublic

MAX_INPUT = 3000  # Slack's limit for a plain_text_input value
EDIT = "signoff:edit"
REJECT = "signoff:reject"
REDRAFT = "signoff:redraft"  # "Reject and redraft": the reject modal, asking for feedback
_OPTIONAL = {"cc", "html", "description"}


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text[:75]}


def _too_long(label: str, length: int, web_url: str) -> str:
    return (
        f"*{escape(label)}* is {length:,} characters, more than a Slack form holds "
        f"({MAX_INPUT:,}); it stays as it is here. <{web_url}|Edit it in the web editor> instead."
    )


def _metadata(item_id: str, channel: str | None) -> str:
    return json.dumps({"item": item_id, "channel": channel})


def read_metadata(view: dict[str, Any]) -> tuple[str, str | None]:
    data = json.loads(view.get("private_metadata") or "{}")
    return str(data.get("item", "")), data.get("channel")


def edit_modal(item: ItemPublic, *, channel: str | None, web_url: str) -> dict[str, Any]:
    """A modal with the kind's editable fields, prefilled; over-long fields link to the
    web editor instead of being cut."""
    content = item.final_content or item.content
    blocks: list[dict[str, Any]] = []
    for name in get_kind(item.kind).editable:
        value = content.get(name)
        text = "\n".join(value or []) if name in LIST_FIELDS else str(value or "")
        label = name.capitalize() + (" (one per line)" if name in LIST_FIELDS else "")
        if name == "proposed":
            options = [{"text": _plain(o), "value": o} for o in content.get("options", [])][:100]
            chosen = next((o for o in options if o["value"] == value), None)
            element: dict[str, Any] = {
                "type": "static_select",
                "action_id": "value",
                "options": options,
            }
            if chosen:
                element["initial_option"] = chosen
        elif len(text) > MAX_INPUT:
            blocks.append(
                {
                    "type": "section",
                    "block_id": f"f_{name}",
                    "text": {
                        "type": "mrkdwn",
                        "text": _too_long(label, len(text), web_url),
                    },
                }
            )
            continue
        else:
            element = {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": name in LONG_FIELDS or name in LIST_FIELDS,
            }
            if text:
                element["initial_value"] = text
        blocks.append(
            {
                "type": "input",
                "block_id": f"f_{name}",
                "label": _plain(label),
                "element": element,
                "optional": name in _OPTIONAL,
            }
        )
    return {
        "type": "modal",
        "callback_id": EDIT,
        "private_metadata": _metadata(item.id, channel),
        "title": _plain("Edit draft"),
        "submit": _plain("Approve edited"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def read_edit(view: dict[str, Any]) -> dict[str, Any]:
    """The edited fields from a submitted edit modal (only the fields it had inputs for)."""
    edited: dict[str, Any] = {}
    for block_id, state in view.get("state", {}).get("values", {}).items():
        if not block_id.startswith("f_"):
            continue
        name, value = block_id[2:], state.get("value", {})
        if value.get("type") == "static_select":
            edited[name] = (value.get("selected_option") or {}).get("value")
            continue
        raw = value.get("value") or ""
        if name in LIST_FIELDS:
            edited[name] = [
                line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()
            ]
        elif name == "html":
            edited[name] = raw or None
        else:
            edited[name] = raw
    return edited


# Per verb: callback id, title (Slack allows 24 characters), submit label, text label.
_REASON_FORMS = {
    "reject": (REJECT, "Reject draft", "Reject", "Details"),
    "redraft": (
        REDRAFT,
        "Reject and redraft",
        "Redraft",
        "What should the next draft do differently?",
    ),
}


def reason_verb(view: dict[str, Any]) -> str:
    """``reject`` or ``redraft``: which reason modal ``view`` is."""
    return "redraft" if view.get("callback_id") == REDRAFT else "reject"


def reject_modal(
    item: ItemPublic, *, channel: str | None, reasons: list[str], verb: str = "reject"
) -> dict[str, Any]:
    """The reason form of Reject, or of Reject and redraft (``verb="redraft"``): the
    route's reject reasons and a text; one of the two is required."""
    callback_id, title, submit, text_label = _REASON_FORMS[verb]
    blocks: list[dict[str, Any]] = []
    if verb == "redraft":
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"The model drafts revision {item.revision + 1} from your "
                        f"reason; revision {item.revision} stays on the card.",
                    }
                ],
            }
        )
    if reasons:
        blocks.append(
            {
                "type": "input",
                "block_id": "reason_code",
                "optional": True,
                "label": _plain("Reason"),
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": [{"text": _plain(r), "value": r} for r in reasons][:100],
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": "reason_text",
            "optional": bool(reasons),
            "label": _plain(text_label),
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
        }
    )
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": _metadata(item.id, channel),
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def read_reject(view: dict[str, Any]) -> tuple[str | None, str | None]:
    values = view.get("state", {}).get("values", {})
    code = (values.get("reason_code", {}).get("value") or {}).get("selected_option") or {}
    text = (values.get("reason_text", {}).get("value") or {}).get("value")
    return code.get("value"), text or None


def error_block(field: str | None, view: dict[str, Any]) -> str:
    """The block a validation error belongs on (``content.subject`` → ``f_subject``)."""
    ids = [b.get("block_id", "") for b in view.get("blocks", []) if b.get("type") == "input"]
    if field:
        name = field.removeprefix("content.").split(".")[0]
        for candidate in (f"f_{name}", name):
            if candidate in ids:
                return candidate
    return ids[0] if ids else "reason_text"
