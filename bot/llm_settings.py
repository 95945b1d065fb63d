"""A route's model settings (``llm:`` in the route file) and the price table
(``prices:`` at the top of the route file).

Configuration only; the behaviour lives in :mod:`bot.tasks`, :mod:`bot.redraft` and
:mod:`bot.assist`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.drafting import Price, PriceTable


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JudgeSettings(_Strict):
    """Score items that arrive without a confidence against ``rubric`` (0..1); the score
    is the item's confidence for routing, shown on the card with its source."""

    rubric: str = Field(min_length=1, max_length=20_000)


class AidSettings(_Strict):
    """Machine-written help on the card: a one-line summary of content of at least
    ``min_chars`` characters and, for a code change, the risky spots of its diff."""

    summary: bool = True
    risky_spots: bool = True
    min_chars: int = Field(default=400, ge=0)


class LlmSettings(_Strict):
    """What a route asks of the model. ``max_revisions`` above 1 offers reviewers
    "Reject and redraft" on items drafted from a task, up to that many drafts in all;
    ``budget_per_day`` (US dollars, UTC days) caps the route's model spending, after
    which tasks are refused and judging and aids are skipped."""

    max_revisions: int = Field(default=1, ge=1, le=10)
    judge: JudgeSettings | None = None
    aids: AidSettings | None = None
    budget_per_day: float | None = Field(default=None, gt=0)


class PriceConfig(_Strict):
    """US dollars per one million input and output tokens of a model."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


def price_table(prices: dict[str, PriceConfig]) -> PriceTable:
    """The configured prices as the drafter's :class:`PriceTable`."""
    return PriceTable(
        {
            model: Price(
                input_per_million=p.input_per_million, output_per_million=p.output_per_million
            )
            for model, p in prices.items()
        }
    )
