"""One-click buttons on Discord cards: a comparison's verdicts and a label item's labels.

Each is a ``DynamicItem`` whose custom id, ``signoff:<verb>:<item id>:<value>`` (at most
70 characters; Discord allows 100), is all the state, so cards posted before a restart
keep working once ``setup_hook`` has registered the class. A click ends in
``bot.choices.click``, and from there in ``ReviewService.decide``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.card import CardChoice
from bot.choices import choice_id

if TYPE_CHECKING:
    from adapters.discord.bot import DiscordReviews

MAX_LABEL = 80  # Discord's limit for a button's label
STYLES = {None: discord.ButtonStyle.secondary, "danger": discord.ButtonStyle.danger}


class ChoiceButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"signoff:(?P<verb>choose|label):(?P<item_id>itm_[0-9A-Z]+):(?P<value>\w+)",
):
    """A verdict ("A better", …) or a label; the same grey for A and B, so neither
    looks like the preferred one."""

    def __init__(self, choice: CardChoice, item_id: str, *, row: int | None = None) -> None:
        text = choice.text or "(blank)"
        super().__init__(
            discord.ui.Button(
                label=text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…",
                style=STYLES.get(choice.style, discord.ButtonStyle.secondary),
                custom_id=choice_id(item_id, choice),
                row=row,
            )
        )
        self.choice = choice
        self.item_id = item_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ChoiceButton:
        # Only the verb and value matter for the click; the text is the card's business.
        choice = CardChoice(match["verb"], match["value"], match["value"])
        return cls(choice, match["item_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        reviews: DiscordReviews | None = getattr(interaction.client, "reviews", None)
        if reviews is None:
            await interaction.response.send_message(
                "signoff is starting; try again.", ephemeral=True
            )
            return
        await reviews.on_choice(interaction, self.choice.verb, self.item_id, self.choice.value)


def add_choices(
    view: discord.ui.View, *, choices: tuple[CardChoice, ...], item_id: str, first_row: int
) -> None:
    """The card's one-click buttons, five a row from ``first_row`` (a label card keeps
    Approve / Edit / Reject on the row above)."""
    for n, choice in enumerate(choices):
        view.add_item(ChoiceButton(choice, item_id, row=first_row + n // 5))
