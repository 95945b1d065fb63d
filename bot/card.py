"""The review card: what a reviewer sees, independent of where they see it.

Each surface renders a :class:`ReviewCard` natively (Block Kit, Discord embeds, HTML);
the core decides what is on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CardField:
    label: str
    value: str
    short: bool = True  # fits beside another field


@dataclass(frozen=True, slots=True)
class CardChoice:
    """A one-click button: ``verb`` (choose | label) and ``value`` (a verdict as shown,
    or a label's index) come back with the click; ``text`` is what the button says."""

    verb: str
    value: str
    text: str
    style: str | None = None  # "danger", or None for a plain button


@dataclass(frozen=True, slots=True)
class ReviewCard:
    item_id: str
    kind: str
    title: str
    route: str
    confidence: float | None
    requested_by: str | None
    due: datetime | None
    fields: tuple[CardField, ...] = ()
    body: str | None = None
    diff: str | None = None  # a unified diff, rendered as code with +/- colouring
    options: tuple[str, ...] = ()  # for decisions: the choices, the proposed one first
    actions: tuple[str, ...] = ("approve", "edit", "reject")
    status: str | None = None  # after a decision: "Approved by …"; None while open
    reject_reasons: tuple[str, ...] = field(default=())
    edit_diff: str | None = None  # once edited and approved: original → released
    # once settled: "Release failed: <reason>" (with a "retry" action), or None
    release_note: str | None = None
    # a blind audit card (bot/audits.py): its buttons carry the audit's id, not the item's
    audit_id: int | None = None
    sections: tuple[CardField, ...] = ()  # labelled long texts: a comparison's prompt, A, B
    choices: tuple[CardChoice, ...] = ()  # one-click buttons while pending (bot/choices.py)
    confidence_source: str | None = None  # "judge" when a model scored it
    revision: int = 1  # of an item a model drafted; 2 after a redraft
    max_revisions: int = 1

    @property
    def web_path(self) -> str:
        """Where the card lives in the web console (an audit card: the blind audit page)."""
        if self.audit_id is not None:
            return f"/audits/{self.audit_id}"
        return f"/items/{self.item_id}"

    @property
    def context_line(self) -> str:
        """Route, confidence, requester and due time on one line."""
        parts = [f"route {self.route}"]
        if self.confidence is not None:
            source = " (judge)" if self.confidence_source == "judge" else ""
            parts.append(f"confidence {self.confidence:.2f}{source}")
        if self.revision > 1:
            parts.append(f"revision {self.revision} of {self.max_revisions}")
        if self.requested_by:
            parts.append(f"requested by {self.requested_by}")
        if self.due is not None:
            parts.append(f"due {self.due:%Y-%m-%d %H:%M} UTC")
        return " · ".join(parts)
