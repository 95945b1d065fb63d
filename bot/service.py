"""The review service: submit drafts and decide on them. Every surface ends here.

Submitting (checking a draft against its route, routing it by policy and confidence,
storing it through the group writer and posting its cards) lives here; deciding, the
one code path for a human decision, in :mod:`bot.deciding`, which ``decide`` and
``precheck`` hand over to.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from bot import ab
from bot.assist import Assistant
from bot.audits import AuditDesk
from bot.auth import Integrator
from bot.clock import Clock
from bot.deciding import Decider
from bot.errors import Conflict
from bot.fanout import SurfaceFanout
from bot.gold import GoldItems
from bot.ids import new_item_id
from bot.intake import Draft, NewItem, check_draft
from bot.notify import Notifier
from bot.overrides import ThresholdOverrides
from bot.policy import auto_decision
from bot.ports import Actor
from bot.prompts import stored_prompt
from bot.routes import Route, RouteTable
from bot.schemas import ItemCreate, ItemPublic
from bot.settle import settle
from bot.states import ItemState, ReleaseState
from bot.views import item_public
from storage import items as item_store
from storage.batch import GroupWriter
from storage.db import SessionFactory
from storage.models import Item
from storage.rows import new_row

log = logging.getLogger("signoff.service")

# How long the submitting process has to post an item's chat cards before a sweep
# takes over (long enough for a paced burst into one channel).
POST_GRACE = timedelta(minutes=10)
POLICY_ACTOR = Actor(surface="policy", user_id="policy", name="signoff policy")


@dataclass(frozen=True, slots=True)
class Drafted:
    """An item a model drafted for a task: the task, and what drafting it cost."""

    task_id: str
    input_tokens: int
    output_tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class Submitted:
    item: ItemPublic
    created: bool  # False: an idempotent replay returned the existing item


class ReviewService:
    """Submit and decide. Reading and waiting live in :class:`bot.reader.ItemReader`."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        fanout: SurfaceFanout,
        reads: SessionFactory | None = None,
        clock: Clock,
        notifier: Notifier,
        writer: GroupWriter,
        release_max_attempts: int = 8,
        on_queued: Callable[[], None] | None = None,
        audits: AuditDesk | None = None,
        thresholds: ThresholdOverrides | None = None,
        ab_rng: random.Random | None = None,
        gold: GoldItems | None = None,
        assistant: Assistant | None = None,
        redraft_lease: timedelta = timedelta(minutes=10),
        on_redraft: Callable[[str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._reads = reads or sessions  # prechecks and replays, without the write lock
        self._routes = routes
        self._fanout = fanout
        self._clock = clock
        self._notifier = notifier
        self._writer = writer
        self._max_attempts = release_max_attempts
        self._on_queued = on_queued or (lambda: None)
        self._audits = audits  # samples automatic decisions for a blind human check
        self._thresholds = thresholds  # thresholds in force (the drift alarm may raise one)
        # draws each comparison's hidden display order (bot/ab.py); tests seed it
        self.ab_rng = ab_rng or random.SystemRandom()
        self._gold = gold  # known-answer items mixed in after real ones (bot/gold.py)
        self._assistant = assistant  # judged confidence and reviewer aids (bot/assist.py)
        self.decider = Decider(
            sessions=sessions,
            reads=self._reads,
            routes=routes,
            fanout=fanout,
            clock=clock,
            notifier=notifier,
            release_max_attempts=release_max_attempts,
            on_queued=self._on_queued,
            redraft_lease=redraft_lease,
            on_redraft=on_redraft or (lambda _: None),
        )
        # Every surface decides through the service; the deciding itself is the Decider's.
        self.decide = self.decider.decide
        self.precheck = self.decider.precheck

    @property
    def writer(self) -> GroupWriter:
        """The group writer new items go through (batch submit shares it)."""
        return self._writer

    # -- submit ------------------------------------------------------------------------

    async def submit(
        self,
        *,
        integrator: Integrator,
        data: ItemCreate,
        idempotency_key: str | None = None,
        gold_expected: str | None = None,
        drafted: Drafted | None = None,
    ) -> Submitted:
        """Validate, store and route a draft; post it for review or decide it by policy.

        With an ``idempotency_key``, a replay with the same body returns the stored item
        (``created=False``) and a replay with another body raises Conflict.
        ``gold_expected`` is for :mod:`bot.gold` only: a gold item, always posted.
        ``drafted`` is for :mod:`bot.tasks` only: the task that drafted the content.
        """
        draft = check_draft(data, routes=self._routes, keyed=idempotency_key is not None)
        if idempotency_key is not None:
            replay = await self._replay(integrator, idempotency_key, draft.request_hash)
            if replay is not None:
                return Submitted(replay, created=False)
        new = await self.prepare(
            integrator=integrator,
            draft=draft,
            idempotency_key=idempotency_key,
            gold_expected=gold_expected,
            drafted=drafted,
        )
        try:
            await self._writer.insert(new.rows)
        except IntegrityError:
            if idempotency_key is None:
                raise
            replay = await self._replay(integrator, idempotency_key, draft.request_hash)
            if replay is None:
                raise
            return Submitted(replay, created=False)
        await self.announce(new.item, queued=new.queued, gold_expected=gold_expected)
        return Submitted(new.item, created=True)

    async def prepare(
        self,
        *,
        integrator: Integrator,
        draft: Draft,
        idempotency_key: str | None = None,
        gold_expected: str | None = None,
        drafted: Drafted | None = None,
    ) -> NewItem:
        """The rows that store a checked draft (:func:`bot.intake.check_draft`) as a new
        item: the item, and when policy decides it at once, its decision and outbox rows.
        Nothing is written; single and batch submit write them (bot/batch_intake.py)."""
        data, route, kind, content = draft.data, draft.route, draft.kind, draft.content
        request_hash = draft.request_hash
        now = self._clock.now()
        row = new_row(  # fast: see storage/rows.py
            Item,
            id=new_item_id(now),
            integrator_id=integrator.id,
            route=route.name,
            kind=kind.name,
            title=data.title,
            content=content,
            confidence=data.confidence,
            callback_url=data.callback_url,
            meta=data.metadata,
            requested_by=data.requested_by,
            prompt=stored_prompt(data.prompt),
            ab_swapped=ab.draw_swapped(kind.name, self.ab_rng),
            state=ItemState.pending,
            release_state=ReleaseState.none,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at=now,
            updated_at=now,
            due_at=data.due_at.astimezone(UTC) if data.due_at else None,
            gold_expected=gold_expected,
        )
        first = route.first_step(posted_at=now)  # the escalation chain starts at posting
        if self._fanout.chat_targets(route):  # in case this process dies before posting
            row.post_due_at = now + POST_GRACE
        if first is not None:
            row.next_step, row.step_due_at = first.index, first.due
        extra: list[SQLModel] = []
        if drafted is not None:
            row.task_id = drafted.task_id
            row.llm_input_tokens = drafted.input_tokens
            row.llm_output_tokens = drafted.output_tokens
            row.llm_cost = drafted.cost
        if data.confidence is not None:
            row.confidence_source = "integrator"
        if self._assistant is not None and gold_expected is None:
            extra.extend(await self._assess(row, route))
        in_force = None
        if self._thresholds is not None and row.confidence is not None:
            in_force = await self._thresholds.thresholds(route)
        auto = auto_decision(route, row.confidence, thresholds=in_force)
        if gold_expected is not None:
            auto = None  # a gold item is for people, whatever its confidence
        if auto is None:
            rows: list[SQLModel] = [row, *extra]
            item = item_public(row, [], self._routes)
        else:
            settled = settle(
                row=row,
                history=[],
                route=route,
                routes=self._routes,
                action=auto.action,
                actor=POLICY_ACTOR,
                now=now,
                max_attempts=self._max_attempts,
                reason_text=auto.reason,
            )
            rows = [row, settled.decision, *settled.deliveries, *extra]
            item = settled.item
        return NewItem(rows=rows, item=item)

    async def announce(
        self, item: ItemPublic, *, queued: bool = True, gold_expected: str | None = None
    ) -> None:
        """After a new item is committed: post a pending item's cards (and maybe a gold
        item after it); tell waiters about a decided one, and the release worker when
        storing it ``queued`` a delivery."""
        if item.state == ItemState.pending:
            await self._fanout.post(item)
            self._notifier.changed(item.id)
            if self._gold is not None and gold_expected is None:
                await self._gold.inject(after=item, submit=self.submit)
        else:
            self._notifier.changed(item.id)
            if queued:
                self._on_queued()
            if self._audits is not None:  # no database work unless the route audits
                await self._audits.maybe_sample(item)

    async def _assess(self, row: Item, route: Route) -> list[SQLModel]:
        """Judge and summarize ``row`` if its route asks (bot/assist.py); the ledger rows."""
        assert self._assistant is not None
        found = await self._assistant.assess(
            route=route,
            item_id=row.id,
            kind=row.kind,
            content=row.content,
            confidence=row.confidence,
            now=row.created_at,
        )
        if found.confidence is not None:
            row.confidence, row.confidence_source = found.confidence, found.source
        row.confidence_note, row.aid = found.note, found.aid
        row.llm_input_tokens += found.usage.input_tokens
        row.llm_output_tokens += found.usage.output_tokens
        row.llm_cost += found.usage.cost
        return list(found.calls)

    async def _replay(
        self, integrator: Integrator, key: str, request_hash: str | None
    ) -> ItemPublic | None:
        async with self._reads() as session:
            row = await item_store.item_by_idempotency_key(
                session, integrator_id=integrator.id, key=key
            )
            if row is None:
                return None
            if row.request_hash != request_hash:
                raise Conflict(
                    f"Idempotency-Key {key!r} was already used with a different body "
                    f"(item {row.id})"
                )
            decisions = await item_store.decisions_for(session, item_ids=[row.id])
            return item_public(row, decisions, self._routes)
