"""Model help at submit: a judged confidence for items that arrive without one, and
reviewer aids (a one-line summary, a code change's risky spots) for long content.

Both are route options (``llm.judge``, ``llm.aids``). A failed or over-budget call never
blocks a submit: the item goes to people without a score, and the card says why.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from bot.drafting import Aid, Drafter, DraftFailed, Judgement, Usage
from bot.errors import BudgetExceeded
from bot.routes import Route
from bot.spending import Spending, call_row
from storage.models import LlmCall

log = logging.getLogger("signoff.assist")
T = TypeVar("T")


@dataclass(slots=True)
class Assessment:
    """What the model added to an item, and the ledger rows of the calls it took."""

    confidence: float | None = None
    source: str | None = None  # "judge" when the score is the judge's
    note: str | None = None  # the judge's rationale, or why there is no score
    aid: dict[str, Any] | None = None
    calls: list[LlmCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


def text_size(content: Mapping[str, Any]) -> int:
    """Characters of text in ``content`` (what a reviewer has to read)."""
    return sum(len(v) for v in content.values() if isinstance(v, str))


class Assistant:
    """Judges and summarizes with ``drafter`` when a route asks for it."""

    def __init__(self, *, drafter: Drafter, spending: Spending, model: str) -> None:
        self._drafter = drafter
        self._spending = spending
        self._model = model

    @staticmethod
    def wanted(
        route: Route, *, kind: str, content: Mapping[str, Any], confidence: float | None
    ) -> bool:
        """Whether ``assess`` would call the model for this item (no database work)."""
        judge = route.llm.judge is not None and confidence is None
        aids = route.llm.aids
        return judge or (aids is not None and text_size(content) >= aids.min_chars)

    async def assess(
        self,
        *,
        route: Route,
        item_id: str,
        kind: str,
        content: Mapping[str, Any],
        confidence: float | None,
        now: datetime,
    ) -> Assessment:
        result = Assessment()
        if not self.wanted(route, kind=kind, content=content, confidence=confidence):
            return result
        try:
            await self._spending.check(route)
        except BudgetExceeded as exc:
            log.warning("item %s: no judge or aids: %s", item_id, exc.message)
            if route.llm.judge is not None and confidence is None:
                result.note = "Not judged: the route's daily model budget is spent."
            return result
        judging = route.llm.judge is not None and confidence is None
        aids = route.llm.aids
        summarizing = aids is not None and text_size(content) >= aids.min_chars
        # One after the other: the judge decides routing, so it goes first.
        judgement = await _attempt(self._judge(route, kind, content)) if judging else None
        aid = await _attempt(self._summarize(kind, content)) if summarizing else None
        if judging:
            result.calls.append(self._row(route, item_id, "judge", judgement, now))
            if isinstance(judgement, Judgement):
                result.confidence, result.source = judgement.score, "judge"
                result.note = judgement.rationale
                result.usage += judgement.usage
            else:
                result.note = f"Not judged: {_problem(judgement)}"
                log.warning("item %s: the judge failed: %s", item_id, _problem(judgement))
        if summarizing:
            result.calls.append(self._row(route, item_id, "aid", aid, now))
            if isinstance(aid, Aid):
                spots = list(aid.risky_spots) if aids is not None and aids.risky_spots else []
                result.aid = {
                    "summary": aid.summary if aids and aids.summary else "",
                    "risky_spots": spots,
                }
                result.usage += aid.usage
            else:
                log.warning("item %s: the reviewer aid failed: %s", item_id, _problem(aid))
        return result

    async def _judge(self, route: Route, kind: str, content: Mapping[str, Any]) -> Judgement:
        assert route.llm.judge is not None
        return await self._drafter.judge(content=content, kind=kind, rubric=route.llm.judge.rubric)

    async def _summarize(self, kind: str, content: Mapping[str, Any]) -> Aid:
        return await self._drafter.summarize(content=content, kind=kind)

    def _row(
        self, route: Route, item_id: str, purpose: str, outcome: object, now: datetime
    ) -> LlmCall:
        usage = getattr(outcome, "usage", None)
        return call_row(
            route=route.name,
            purpose=purpose,
            model=self._model,
            usage=usage if isinstance(usage, Usage) else Usage(),
            at=now,
            ok=not isinstance(outcome, BaseException),
            item_id=item_id,
        )


async def _attempt(call: Awaitable[T]) -> T | Exception:
    """The call's result, or the exception it raised (reported, never raised here)."""
    try:
        return await call
    except Exception as exc:
        return exc


def _problem(exc: object) -> str:
    if isinstance(exc, DraftFailed):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
