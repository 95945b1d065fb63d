"""Reject and redraft: a reviewer's reason becomes feedback for the item's next revision.

The click is a decision like any other (``service.decide(action="redraft")``): recorded,
and the item held (``redraft_until``, a lease) so nobody decides on the rejected draft.
:class:`Redrafter` then asks the model for the next revision with every earlier draft
and its reason, and puts it in place of the old one in one conditional update: same
item, same cards (updated in place), the rejected drafts kept in ``revisions``. A
redraft the model cannot make (invalid twice, timed out, the route's budget spent)
rejects the item by policy, naming why. A process that dies mid-redraft leaves the
lease to run out; :meth:`Redrafter.run_due` (the task loop) takes it over.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from bot.assist import Assessment, Assistant
from bot.clock import Clock
from bot.drafting import Drafter, DraftFailed, Revision, Usage
from bot.errors import BudgetExceeded
from bot.fanout import SurfaceFanout
from bot.leased_runs import LeasedRuns
from bot.notify import Notifier
from bot.ports import Actor
from bot.routes import RouteTable
from bot.settle import settle
from bot.spending import Spending, call_row
from bot.states import Action, ItemState
from bot.views import item_public
from storage import items as item_store
from storage import outbox as outbox_store
from storage import tasks as task_store
from storage.db import SessionFactory
from storage.models import Decision, Item

log = logging.getLogger("signoff.redraft")

DRAFTER = Actor(surface="policy", user_id="drafter", name="signoff drafter")


def reason_of(decision: Decision) -> str:
    """The reviewer's reason on a redraft decision, as the model is told it."""
    return ": ".join(r for r in (decision.reason_code, decision.reason_text) if r) or "rejected"


class Redrafter:
    """Drafts the next revision of items a reviewer sent back."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        clock: Clock,
        drafter: Drafter,
        spending: Spending,
        fanout: SurfaceFanout,
        notifier: Notifier,
        model: str,
        lease: timedelta,
        max_attempts: int,
        on_queued: Any = None,
        assistant: Assistant | None = None,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._clock = clock
        self._drafter = drafter
        self._spending = spending
        self._fanout = fanout
        self._notifier = notifier
        self._model = model
        self._lease = lease
        self._max_attempts = max_attempts
        self._on_queued = on_queued or (lambda: None)
        self._assistant = assistant  # judges and summarizes each new revision afresh
        self._runs = LeasedRuns(run=self.run, log=log, what="item %s: redraft")

    def start(self, item_id: str) -> None:
        """Redraft ``item_id`` in the background (the click was acknowledged already)."""
        self._runs.start(item_id)

    async def drain(self) -> None:
        """Wait for the redrafts started here (tests, shutdown)."""
        await self._runs.drain()

    async def run_due(self) -> int:
        """Take over redrafts whose lease ran out (their process died); how many ran."""
        now = self._clock.now()
        async with self._sessions() as session:
            ids = await item_store.stale_redrafts(session, now=now)
        ran = 0
        for item_id in ids:
            async with self._sessions() as session, session.begin():
                row = await item_store.get_item(session, item_id=item_id)
                if row is None or row.redraft_until is None or row.redraft_until > now:
                    continue
                if not await item_store.update_item_if_version(
                    session,
                    item_id=item_id,
                    version=row.version,
                    values={"redraft_until": now + self._lease},
                ):
                    continue
            await self._runs.guarded(item_id)
            ran += 1
        return ran

    async def hand_back(self) -> int:
        """At shutdown: stop the redrafts running here and end their leases, so another
        replica takes them over at once; how many were handed back."""
        held = await self._runs.stop()
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            for item_id in held:
                await item_store.release_redraft(session, item_id=item_id, now=now)
        return len(held)

    async def run(self, item_id: str) -> None:
        """Draft the next revision of ``item_id`` and put it in place (or reject it)."""
        async with self._sessions() as session:
            row = await item_store.get_item(session, item_id=item_id)
            if row is None or row.state != ItemState.pending or row.redraft_until is None:
                return
            history = await item_store.decisions_for(session, item_ids=[item_id])
            task = await task_store.get_task(session, task_id=row.task_id or "")
        route = self._routes.get(row.route)
        asked = next((d for d in reversed(history) if d.action == Action.redraft), None)
        if route is None or task is None or asked is None:
            await self._reject(row, "the task or route of this item is gone", Usage())
            return
        rejected = [*(row.revisions or []), _revision(row, asked)]
        feedback = [Revision(content=r["content"], reason=r["reason"] or "") for r in rejected]
        try:
            await self._spending.check(route)
            draft = await self._drafter.draft(
                kind=row.kind,
                instructions=task.instructions,
                context=task.context if task.context is not None else "",
                feedback=feedback,
            )
        except (DraftFailed, BudgetExceeded) as exc:
            usage = exc.usage if isinstance(exc, DraftFailed) else Usage()
            await self._reject(row, exc.message, usage)
            return
        now = self._clock.now()
        fresh = Assessment()
        if self._assistant is not None:  # the summary and score were of the old draft
            judged = row.confidence_source == "judge"
            fresh = await self._assistant.assess(
                route=route,
                item_id=item_id,
                kind=row.kind,
                content=draft.content,
                confidence=None if judged else row.confidence,
                now=now,
            )
        spent = draft.usage + fresh.usage
        async with self._sessions() as session, session.begin():
            current = await item_store.get_item(session, item_id=item_id)
            session.add_all(fresh.calls)
            if current is None or current.state != ItemState.pending:
                session.add(self._call(row, draft.usage, now, ok=True))
                return  # expired meanwhile: the draft is paid for, not used
            session.expunge(current)
            values: dict[str, Any] = {
                "content": draft.content,
                "final_content": None,
                "revision": current.revision + 1,
                "revisions": rejected,
                "redraft_until": None,
                "updated_at": now,
                "llm_input_tokens": current.llm_input_tokens + spent.input_tokens,
                "llm_output_tokens": current.llm_output_tokens + spent.output_tokens,
                "llm_cost": current.llm_cost + spent.cost,
                "aid": fresh.aid,
            }
            if row.confidence_source == "judge" or fresh.note is not None:
                # shown beside the new revision; routing happened when it was submitted
                values["confidence_note"] = fresh.note
                if fresh.confidence is not None:
                    values["confidence"] = fresh.confidence
            if not await item_store.update_item_if_version(
                session, item_id=item_id, version=current.version, values=values
            ):
                log.info("item %s changed during its redraft; the next loop retries", item_id)
                return
            session.add(self._call(row, draft.usage, now, ok=True))
            for key, value in values.items():
                setattr(current, key, value)
            decisions = await item_store.decisions_for(session, item_ids=[item_id])
        item = item_public(current, decisions, self._routes)
        log.info("item %s: revision %d posted", item_id, item.revision)
        self._notifier.changed(item_id)
        await self._fanout.refresh(item)

    async def _reject(self, row: Item, problem: str, usage: Usage) -> None:
        """The model could not redraft: reject by policy, saying why, in one transaction."""
        now = self._clock.now()
        log.warning("item %s: redraft failed, rejecting it: %s", row.id, problem)
        route = self._routes.get(row.route)
        async with self._sessions() as session, session.begin():
            session.add(self._call(row, usage, now, ok=False))
            current = await item_store.get_item(session, item_id=row.id)
            if current is None or current.state != ItemState.pending or route is None:
                return
            session.expunge(current)
            history = await item_store.decisions_for(session, item_ids=[row.id])
            version = current.version
            settled = settle(
                row=current,
                history=history,
                route=route,
                routes=self._routes,
                action=Action.reject,
                actor=DRAFTER,
                now=now,
                max_attempts=self._max_attempts,
                reason_text=f"redraft failed: {problem}"[:2000],
            )
            settled.values["redraft_until"] = None
            if not await item_store.update_item_if_version(
                session, item_id=row.id, version=version, values=settled.values
            ):
                return
            await item_store.add_decision(session, decision=settled.decision)
            for delivery in settled.deliveries:
                await outbox_store.enqueue(session, delivery=delivery)
        item = settled.item.model_copy(update={"redrafting": False})
        self._notifier.changed(row.id)
        self._on_queued()
        await self._fanout.refresh(item)

    def _call(self, row: Item, usage: Usage, now: datetime, *, ok: bool) -> Any:
        return call_row(
            route=row.route,
            purpose="redraft",
            model=self._model,
            usage=usage,
            at=now,
            ok=ok,
            item_id=row.id,
            task_id=row.task_id,
        )


def _revision(row: Item, asked: Decision) -> dict[str, Any]:
    """The rejected draft as kept in ``revisions``."""
    return {
        "number": row.revision,
        "content": row.final_content or row.content,
        "reason": reason_of(asked),
        "rejected_by": asked.actor_name,
        "at": asked.at.isoformat(),
    }
