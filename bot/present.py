"""What a card says: built from an item and its route, for every surface alike."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from bot.ab import card_content
from bot.card import CardField, ReviewCard
from bot.choices import card_choices
from bot.errors import Winner
from bot.kinds import get_kind
from bot.reasons import item_reject_reasons
from bot.redraft_rules import redraft_refusal
from bot.routes import Route
from bot.schemas import DecisionPublic, ItemPublic

_VERBS = {
    "approve": "Approved",
    "edit": "Edited and approved",
    "reject": "Rejected",
    "auto_approve": "Auto-approved",
    "auto_reject": "Auto-rejected",
    "expire": "Expired",
    "redraft": "Sent back for a redraft",
}


def content_text(content: Mapping[str, Any]) -> list[str]:
    """Content as lines of text, field by field, for showing what an edit changed."""
    lines: list[str] = []
    for key, value in content.items():
        if value is None or value == [] or value == "":
            continue
        if isinstance(value, list):
            lines.append(f"{key}: {', '.join(map(str, value))}")
        elif isinstance(value, str) and "\n" in value:
            lines.append(f"{key}:")
            lines.extend(f"  {part}" for part in value.splitlines())
        else:
            lines.append(f"{key}: {value}")
    return lines


def content_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """A unified diff from the original content to the released one."""
    return "\n".join(
        difflib.unified_diff(
            content_text(before), content_text(after), "original", "released", lineterm=""
        )
    )


def build_card(item: ItemPublic, route: Route) -> ReviewCard:
    """The review card of ``item``: kind-specific parts plus the current status."""
    parts = get_kind(item.kind).card_parts(card_content(item))
    notes, earlier = model_notes(item)
    return ReviewCard(
        item_id=item.id,
        kind=item.kind,
        title=item.title,
        route=item.route,
        confidence=item.confidence,
        requested_by=item.requested_by,
        due=item.due_at,
        fields=(*notes, *parts.fields),
        body=parts.body,
        diff=parts.diff,
        options=parts.options,
        actions=_actions(item, route),
        status=status_line(item),
        reject_reasons=tuple(item_reject_reasons(route, item.metadata)),
        edit_diff=(
            content_diff(item.content, item.final_content)
            if item.outcome == "edited" and item.final_content is not None
            else None
        ),
        release_note=(
            f"Release failed: {item.release_error or 'unknown error'}"
            if item.release_state == "failed"
            else None
        ),
        sections=(*parts.sections, *earlier),
        choices=card_choices(item),
        confidence_source=item.confidence_source,
        revision=item.revision,
        max_revisions=route.llm.max_revisions,
    )


MACHINE = "machine-written"


def model_notes(item: ItemPublic) -> tuple[tuple[CardField, ...], tuple[CardField, ...]]:
    """What a model added, labelled as machine-written: (fields for the judge's
    rationale and the reviewer aids, sections for the drafts rejected before)."""
    notes: list[CardField] = []
    if item.aid is not None and item.aid.summary:
        notes.append(CardField(f"Summary ({MACHINE})", item.aid.summary, short=False))
    if item.aid is not None and item.aid.risky_spots:
        spots = "\n".join(f"• {spot}" for spot in item.aid.risky_spots)
        notes.append(CardField(f"Risky spots ({MACHINE})", spots, short=False))
    if item.confidence_source == "judge" and item.confidence_note:
        notes.append(CardField(f"Judge ({MACHINE})", item.confidence_note, short=False))
    elif item.confidence is None and item.confidence_note:
        notes.append(CardField("Judge", item.confidence_note, short=False))
    earlier = tuple(
        CardField(
            f"Revision {r.number}, rejected by {r.rejected_by or 'a reviewer'}: {r.reason or ''}",
            "\n".join(content_text(r.content)),
            short=False,
        )
        for r in item.revisions
    )
    return tuple(notes), earlier


def _actions(item: ItemPublic, route: Route) -> tuple[str, ...]:
    if item.state == "pending":
        if item.redrafting:
            return ()  # the next revision is on its way
        # a comparison is decided by its choices alone (bot/choices.py)
        if item.kind == "comparison":
            return ()
        refusal = redraft_refusal(
            task_id=item.task_id, revision=item.revision, kind=item.kind, route=route
        )
        return ("approve", "edit", "reject", *(("redraft",) if refusal is None else ()))
    if item.release_state == "failed":
        return ("retry",)  # the release can be queued again, with the same key
    return ()


def status_line(item: ItemPublic) -> str | None:
    """One line on where the item stands, or None while nobody has acted."""
    if item.state == "pending" and item.redrafting:
        asked = next((d for d in reversed(item.decisions) if d.action == "redraft"), None)
        who = f" by {asked.actor_name}" if asked else ""
        return f"Revision {item.revision} rejected{who}; drafting revision {item.revision + 1}…"
    if item.state == "pending":
        if item.approvals and item.quorum > 1:
            return f"{item.approvals} of {item.quorum} approvals"
        return None
    final = next((d for d in reversed(item.decisions) if d.action in _VERBS), None)
    if final is None:
        return item.state.capitalize()
    return describe(final)


def approvers_of(item: Mapping[str, Any]) -> list[str]:
    """Who approved ``item`` (its JSON form), in order, once each: ``ann (slack U0ANN)``.

    For ``Reviewed-by`` trailers and pull request bodies."""
    seen: dict[str, str] = {}
    for d in item.get("decisions") or []:
        if d.get("action") in ("approve", "edit") and d.get("surface") != "policy":
            who = f"{d.get('surface')}:{d.get('actor_id')}"
            seen.setdefault(who, f"{d.get('actor_name')} ({d.get('surface')} {d.get('actor_id')})")
    return list(seen.values())


def already_decided(winner: Winner) -> str:
    """What a late clicker is told: ``Already approved by ann at 10:42 UTC (2026-01-05).``"""
    verb = _VERBS.get(winner.action, winner.action).lower()
    return f"Already {verb} by {winner.actor_name} at {winner.at:%H:%M} UTC ({winner.at:%Y-%m-%d})."


def describe(decision: DecisionPublic) -> str:
    verb = _VERBS.get(decision.action, decision.action)
    if decision.action == "expire" and decision.reason_text:
        return f"{verb} {decision.reason_text}"  # Expired after 24 h — rejected by policy
    if decision.surface == "policy":
        return f"{verb}: {decision.reason_text}" if decision.reason_text else verb
    text = f"{verb} by {decision.actor_name}"
    reason = ": ".join(r for r in (decision.reason_code, decision.reason_text) if r)
    if decision.action in ("reject", "redraft") and reason:
        text += f": {reason}"
    minutes = round(decision.since_posted_seconds / 60)
    text += f" · {minutes} min after posting"
    return text


def fit_lines(head: str, lines: Sequence[str], *, limit: int) -> str:
    """``head`` and as many of ``lines`` as fit in ``limit`` characters, one a line; when
    some do not fit, the last line says how many were left out ("… and N more")."""
    head = head[: max(0, limit - len(_more(len(lines))))] if lines else head[:limit]
    text = head
    for n, line in enumerate(lines):
        left_after = len(lines) - n - 1
        longer = f"{text}\n{line}" if text else line
        if len(longer) + (len(_more(left_after)) if left_after else 0) > limit:
            # The previous round made sure this tail fits after ``text``.
            return f"{text}{_more(len(lines) - n)}".lstrip("\n")
        text = longer
    return text


def _more(count: int) -> str:
    return f"\n… and {count} more"
