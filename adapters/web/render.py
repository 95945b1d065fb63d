"""Turning items into what the web pages show: diffs with line numbers, edit forms,
the history. Templates are Jinja2 with autoescaping on: AI text is always shown as
text, never as markup."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.kinds import LIST_FIELDS, LONG_FIELDS, get_kind
from bot.present import content_diff
from bot.schemas import ItemPublic
from storage.models import DeliveryAttempt, StepRun

TEMPLATES = Path(__file__).with_name("templates")
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # add | del | ctx | hunk | file
    old: int | None
    new: int | None
    text: str


def diff_lines(diff: str) -> list[DiffLine]:
    """A unified diff, line by line, with old and new line numbers."""
    out: list[DiffLine] = []
    old = new = 0
    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            old, new = int(hunk.group(1)), int(hunk.group(2))
            out.append(DiffLine("hunk", None, None, line))
        elif line.startswith(("--- ", "+++ ", "diff ", "index ")):
            out.append(DiffLine("file", None, None, line))
        elif line.startswith("+"):
            out.append(DiffLine("add", None, new, line))
            new += 1
        elif line.startswith("-"):
            out.append(DiffLine("del", old, None, line))
            old += 1
        else:
            out.append(DiffLine("ctx", old, new, line))
            old, new = old + 1, new + 1
    return out


def edit_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[DiffLine]:
    """What changed between the original and the released version."""
    return diff_lines(content_diff(before, after))


@dataclass(frozen=True, slots=True)
class EditField:
    name: str
    label: str
    widget: str  # text | textarea | lines | select
    value: str
    options: tuple[str, ...] = ()


def edit_fields(item: ItemPublic) -> list[EditField]:
    """The kind's editable fields, prefilled with the current version."""
    content = item.final_content or item.content
    fields = []
    for name in get_kind(item.kind).editable:
        value = content.get(name)
        if name in LIST_FIELDS:
            fields.append(EditField(name, name.capitalize(), "lines", "\n".join(value or [])))
        elif name == "proposed":
            options = tuple(content.get("options", ()))
            fields.append(EditField(name, "Proposed", "select", str(value), options))
        elif name in LONG_FIELDS:
            fields.append(EditField(name, name.capitalize(), "textarea", value or ""))
        else:
            fields.append(EditField(name, name.capitalize(), "text", str(value or "")))
    return fields


def parse_edit(item: ItemPublic, form: Mapping[str, str]) -> dict[str, Any]:
    """Edited content from the form's ``f_<field>`` values (only editable fields)."""
    edited: dict[str, Any] = {}
    for name in get_kind(item.kind).editable:
        raw = form.get(f"f_{name}")
        if raw is None:
            continue
        raw = raw.replace("\r\n", "\n")
        if name in LIST_FIELDS:
            edited[name] = [p.strip() for p in re.split(r"[\n,]", raw) if p.strip()]
        elif name == "html":
            edited[name] = raw or None
        else:
            edited[name] = raw
    return edited


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    who: str
    what: str
    detail: str | None
    ok: bool = True


_DONE = {
    "approve": "approved",
    "edit": "edited and approved",
    "reject": "rejected",
    "auto_approve": "auto-approved",
    "auto_reject": "auto-rejected",
    "expire": "expired",
    "redraft": "rejected and asked for a redraft",
}


_STEP = {"nudge": "reminder", "escalate": "escalated", "expire": "past its expiry"}


def history(
    item: ItemPublic, attempts: Sequence[DeliveryAttempt], steps: Sequence[StepRun] = ()
) -> list[HistoryEntry]:
    """What happened to the item, oldest first: decisions, escalation steps, deliveries."""
    entries = [
        HistoryEntry(at=item.created_at, who="integrator", what="submitted", detail=item.title)
    ]
    for d in item.decisions:
        reason = ": ".join(r for r in (d.reason_code, d.reason_text) if r) or None
        who = "policy" if d.surface == "policy" else f"{d.actor_name} ({d.surface})"
        entries.append(
            HistoryEntry(at=d.at, who=who, what=_DONE.get(d.action, d.action), detail=reason)
        )
    for a in attempts:
        entries.append(
            HistoryEntry(
                at=a.at,
                who="signoff",
                what=f"{a.purpose} attempt {a.attempt}",
                detail=a.detail,
                ok=a.ok,
            )
        )
    for run in steps:
        if run.fired_at is None or (run.action == "expire" and run.detail.startswith("expired")):
            continue  # in progress, or an expiry: that one is shown as the decision
        what = "skipped" if run.detail.startswith("skipped") else _STEP.get(run.action, run.action)
        entries.append(
            HistoryEntry(
                at=run.fired_at,
                who="scheduler",
                what=what,
                detail=run.detail,
                ok=not run.detail.startswith("gave up"),
            )
        )
    return sorted(entries, key=lambda e: e.at)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else ""
    env.filters["ago"] = _ago
    return env


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
