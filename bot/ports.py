"""The Protocols adapters implement, and the neutral types that cross them.

A *surface* shows review cards to people (web inbox, Slack, Discord) and turns their
clicks into ``ReviewService.decide`` calls. A *delivery target* carries an approved
action or a decision callback to another system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.card import ReviewCard


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: the surface, their id there, a display name, and their groups/roles."""

    surface: str
    user_id: str
    name: str
    groups: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """Identity for quorum: one person counts once per surface id."""
        return f"{self.surface}:{self.user_id}"


class Surface(Protocol):
    """Where reviewers see cards. Implementations must not raise on a transient outage
    of their platform without having logged it; the core logs and carries on."""

    name: str

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any] | None:
        """Show a new card; return a JSON-able reference to it for later updates, or
        None when the surface renders cards from the item itself (the web inbox) and has
        nothing to remember."""
        ...

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        """Replace a posted card in place (after a decision, a quorum vote, a release)."""
        ...

    async def nudge(
        self,
        *,
        card: ReviewCard,
        ref: Mapping[str, Any],
        mentions: Sequence[str],
        text: str,
        key: str,
        check_first: bool = False,
    ) -> None:
        """Remind the given people about a posted card (a thread reply or similar).

        ``key`` is the same on every attempt of this reminder. ``check_first`` is set
        when an earlier attempt may have gone out before its sender died: a surface that
        can tell (e.g. from message metadata) skips a reminder that is already there.
        """
        ...

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[DigestEntry],
    ) -> None:
        """Post one message listing several items (a digest) in ``channel``."""
        ...


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One line of a digest: an item, a link to it, and how long it has waited."""

    item_id: str
    title: str
    url: str
    note: str  # e.g. "waiting 3 h" or "expires in 2 h"


@dataclass(frozen=True, slots=True)
class DeliveryRequest:
    """One delivery attempt. ``idempotency_key`` is the same on every attempt.

    ``item`` is the item as the API shows it when it was settled (``final_content`` is
    what to release; ``decisions`` say who approved); ``target`` is the route's target
    configuration at that time (e.g. ``{"type": "email", "from": "..."}``); ``body`` is
    the JSON a webhook receives.
    """

    url: str
    body: bytes
    idempotency_key: str
    signing_secret: str
    event: str
    attempt: int
    item: Mapping[str, Any] = field(default_factory=dict)
    target: Mapping[str, Any] = field(default_factory=dict)


class DeliveryTarget(Protocol):
    """Carries a delivery to another system; raises ``ReleaseError`` on failure."""

    async def deliver(self, *, request: DeliveryRequest) -> str:
        """Deliver once; return a short receipt (e.g. ``HTTP 200``)."""
        ...
