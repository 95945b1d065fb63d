"""One-click decisions on a card: a comparison's verdicts and a label item's labels.

A pending card carries them as :class:`bot.card.CardChoice` buttons, identified on every
surface as ``signoff:<verb>:<item id>:<value>`` (at most 70 characters: within Slack's
255 for an action id and Discord's 100 for a custom id). A click comes back as
(verb, value) to :func:`click`, which ends in ``ReviewService.decide`` like every
other decision:

- ``choose``, value ``A``, ``B``, ``tie`` or ``both_bad`` (as displayed): the comparison
  is decided with that choice, mapped to its candidate by the service (:mod:`bot.ab`).
- ``label``, value the index of a label in the submitted list: the item is decided as
  an edit to that one label (an edit that changes nothing counts as an approval, so
  under a quorum reviewers who click the same label agree).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from bot import ab
from bot.card import CardChoice
from bot.errors import InvalidInput
from bot.ports import Actor
from bot.schemas import ItemPublic
from bot.states import Action

if TYPE_CHECKING:  # the service builds cards through modules that import this one
    from bot.reader import ItemReader
    from bot.service import ReviewService

MAX_LABEL_BUTTONS = 10  # more labels than this: the card's Edit form picks them
VERBS = ("choose", "label")
_ID = re.compile(r"^signoff:(?P<verb>choose|label):(?P<item_id>itm_[0-9A-Z]+):(?P<value>\w+)$")


def card_choices(item: ItemPublic) -> tuple[CardChoice, ...]:
    """The one-click buttons of a pending item's card: a comparison's four verdicts
    (A and B alike, so neither looks preferred), or one per label of a label item with
    at most :data:`MAX_LABEL_BUTTONS` labels."""
    if item.state != "pending":
        return ()
    if item.kind == ab.KIND:
        return tuple(
            CardChoice("choose", v, ab.BUTTON_TEXT[v], "danger" if v == "both_bad" else None)
            for v in ab.VERDICTS
        )
    labels = (item.content.get("labels") or []) if item.kind == "label" else []
    if len(labels) > MAX_LABEL_BUTTONS:
        return ()
    return tuple(CardChoice("label", str(n), label) for n, label in enumerate(labels))


def choice_id(item_id: str, choice: CardChoice) -> str:
    """``signoff:choose:itm_…:A``: the click carries everything, so no state is kept."""
    return f"signoff:{choice.verb}:{item_id}:{choice.value}"


def parse_choice_id(value: str) -> tuple[str, str, str] | None:
    """(verb, item id, value) of one of our one-click buttons, or None."""
    match = _ID.match(value)
    return (match["verb"], match["item_id"], match["value"]) if match else None


async def click(
    *,
    service: ReviewService,
    reader: ItemReader,
    item_id: str,
    verb: str,
    value: str,
    actor: Actor,
    opened_at: datetime | None = None,
) -> ItemPublic:
    """Decide ``item_id`` by a one-click button (``choose`` a verdict, or ``label``
    by index) through ``ReviewService.decide``. Raises what ``decide`` raises, and
    InvalidInput naming ``choice``/``label`` for a verb or value that does not fit.
    ``opened_at``: when the reviewer opened the item, where the surface knows it."""
    if verb == "choose":
        ab.candidate(value, swapped=False)  # an unknown verdict is refused before reading
        return await service.decide(
            item_id=item_id,
            action=ab.action_for(value),
            actor=actor,
            choice=value,
            reason_text=ab.BOTH_BAD if value == "both_bad" else None,
            opened_at=opened_at,
        )
    if verb != "label":
        raise InvalidInput(f"{verb!r} is not a one-click verb ({', '.join(VERBS)})", field="verb")
    item = await reader.get(item_id=item_id)
    if item.kind != "label":
        raise InvalidInput(f"item {item_id} is a {item.kind}, not a label item", field="label")
    labels: list[str] = list(item.content.get("labels") or [])
    if not value.isdigit() or int(value) >= len(labels):
        raise InvalidInput(
            f"{value!r} is not a label of item {item_id} (0 to {len(labels) - 1})", field="label"
        )
    return await service.decide(
        item_id=item_id,
        action=Action.edit,
        actor=actor,
        content={"labels": [labels[int(value)]]},
        opened_at=opened_at,
    )
