"""The review service: submit drafts and decide on them. Every surface ends here.

``decide`` is the one code path for a human decision, whichever surface the click came
from. It is a conditional update on the item's version inside one transaction that
also appends the decision and queues the outbox rows, so of any number of racing
clicks exactly one settles the item, and a settled item always has its release queued.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from bot import ab, fatigue
from bot.audits import AuditDesk
from bot.auth import Integrator
from bot.clock import Clock
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.fanout import SurfaceFanout
from bot.gold import GoldItems
from bot.ids import new_item_id
from bot.kinds import get_kind, validate_content, validate_edit
from bot.notify import Notifier
from bot.overrides import ThresholdOverrides
from bot.policy import Vote, approvers, auto_decision
from bot.ports import Actor
from bot.prompts import stored_prompt
from bot.reasons import item_reject_reasons
from bot.reviewer_stats import check_daily_cap
from bot.routes import Route, RouteTable
from bot.schemas import ItemCreate, ItemPublic
from bot.settle import already_settled, new_decision, settle
from bot.states import Action, ItemState, ReleaseState, next_state
from bot.views import item_public, votes_of
from storage import items as item_store
from storage import outbox as outbox_store
from storage.batch import GroupWriter
from storage.db import SessionFactory
from storage.models import Item

log = logging.getLogger("signoff.service")

# How long the submitting process has to post an item's chat cards before a sweep
# takes over (long enough for a paced burst into one channel).
POST_GRACE = timedelta(minutes=10)
POLICY_ACTOR = Actor(surface="policy", user_id="policy", name="signoff policy")
_MAX_RACE_RETRIES = 500


@dataclass(frozen=True, slots=True)
class Submitted:
    item: ItemPublic
    created: bool  # False: an idempotent replay returned the existing item


class _Stale(Exception):
    """The item changed between read and conditional update; read again."""


class ReviewService:
    """Submit and decide. Reading and waiting live in :class:`bot.reader.ItemReader`."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        fanout: SurfaceFanout,
        clock: Clock,
        notifier: Notifier,
        writer: GroupWriter,
        release_max_attempts: int = 8,
        on_queued: Callable[[], None] | None = None,
        audits: AuditDesk | None = None,
        thresholds: ThresholdOverrides | None = None,
        ab_rng: random.Random | None = None,
        gold: GoldItems | None = None,
    ) -> None:
        self._sessions = sessions
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

    # -- submit ------------------------------------------------------------------------

    async def submit(
        self,
        *,
        integrator: Integrator,
        data: ItemCreate,
        idempotency_key: str | None = None,
        gold_expected: str | None = None,
    ) -> Submitted:
        """Validate, store and route a draft; post it for review or decide it by policy.

        With an ``idempotency_key``, a replay with the same body returns the stored item
        (``created=False``) and a replay with another body raises Conflict.
        ``gold_expected`` is for :mod:`bot.gold` only: a gold item, always posted.
        """
        if "\\u0000" in data.model_dump_json():  # rare: find and name the field
            _refuse_nul(data.model_dump(mode="json"), path="")
        route = self._route(data.route)
        kind = get_kind(data.kind)
        content = validate_content(kind, data.content)
        if data.callback_url is not None and not route.host_allowed(data.callback_url):
            raise InvalidInput(
                f"host of {data.callback_url!r} is not in the callback_hosts of route "
                f"{route.name!r} (allowed: {', '.join(route.callback_hosts) or 'none'})",
                field="callback_url",
            )
        request_hash = (
            hashlib.sha256(_canonical(data).encode()).hexdigest() if idempotency_key else None
        )
        if idempotency_key is not None:
            replay = await self._replay(integrator, idempotency_key, request_hash)
            if replay is not None:
                return Submitted(replay, created=False)

        now = self._clock.now()
        row = Item(
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
        in_force = None
        if self._thresholds is not None and data.confidence is not None:
            in_force = await self._thresholds.thresholds(route)
        auto = auto_decision(route, data.confidence, thresholds=in_force)
        if gold_expected is not None:
            auto = None  # a gold item is for people, whatever its confidence
        if auto is None:
            rows: list[SQLModel] = [row]
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
            rows = [row, settled.decision, *settled.deliveries]
            item = settled.item
        try:
            await self._writer.insert(rows)
        except IntegrityError:
            if idempotency_key is None:
                raise
            replay = await self._replay(integrator, idempotency_key, request_hash)
            if replay is None:
                raise
            return Submitted(replay, created=False)

        if item.state == ItemState.pending:
            await self._fanout.post(item)
            self._notifier.changed(item.id)
            if self._gold is not None and gold_expected is None:
                await self._gold.inject(after=item, submit=self.submit)
        else:
            self._after_settle(item)
            if self._audits is not None:  # no database work unless the route audits
                await self._audits.maybe_sample(item)
        return Submitted(item, created=True)

    async def _replay(
        self, integrator: Integrator, key: str, request_hash: str | None
    ) -> ItemPublic | None:
        async with self._sessions() as session:
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

    # -- decide ------------------------------------------------------------------------

    async def decide(
        self,
        *,
        item_id: str,
        action: Action | str,
        actor: Actor,
        content: Mapping[str, Any] | None = None,
        reason_code: str | None = None,
        reason_text: str | None = None,
        choice: str | None = None,
        opened_at: datetime | None = None,
    ) -> ItemPublic:
        """Record a human decision: approve, edit (approve a changed version) or reject.

        A comparison is decided with a ``choice`` as the card showed it (``A``, ``B``,
        ``tie``: approve; ``both_bad``: reject), recorded for its candidate (bot/ab.py).
        An edit that changes nothing counts as an approval.

        ``opened_at`` is when this reviewer opened the item, where the surface knows it:
        it times the decision and feeds the rubber-stamp flag (bot/fatigue.py).

        Raises NotFound, NotAllowed (not a reviewer, self-approval, bad reason, daily cap
        reached), InvalidInput (bad edit), or Conflict when the item is already settled
        (naming who settled it) or this reviewer has already approved.
        """
        action = Action(action)
        if action not in (Action.approve, Action.edit, Action.reject):
            raise InvalidInput(f"{action.value} is not a reviewer action", field="action")
        for _ in range(_MAX_RACE_RETRIES):
            try:
                item, settled = await self._try_decide(
                    item_id=item_id,
                    action=action,
                    actor=actor,
                    content=content,
                    reason_code=reason_code,
                    reason_text=reason_text,
                    choice=choice,
                    opened_at=opened_at,
                )
            except _Stale:
                continue
            if settled:
                self._after_settle(item)
            else:
                self._notifier.changed(item.id)
            await self._fanout.refresh(item)
            return item
        raise Conflict(f"item {item_id} is changing too fast; try again")

    async def precheck(
        self,
        *,
        item_id: str,
        action: Action | str,
        actor: Actor,
        content: Mapping[str, Any] | None = None,
        reason_code: str | None = None,
    ) -> None:
        """Raise what ``decide`` would raise (Conflict naming who settled the item,
        NotAllowed, InvalidInput, NotFound), without deciding: lets a surface answer
        within its deadline and decide after. Races are still settled by ``decide``."""
        action = Action(action)
        async with self._sessions() as session:
            row = await item_store.get_item(session, item_id=item_id)
            if row is None:
                raise NotFound(f"no item {item_id}")
            if row.state != ItemState.pending:
                history = await item_store.decisions_for(session, item_ids=[item_id])
                raise already_settled(row, history)
        route = self._route(row.route)
        self._check_allowed(row=row, route=route, action=action, actor=actor)
        async with self._sessions() as session:
            await check_daily_cap(session, route=route, actor=actor, now=self._clock.now())
        if action == Action.edit and content is not None:  # None: the form is not filled yet
            validate_edit(get_kind(row.kind), row.final_content or row.content, dict(content))
        if action == Action.reject and reason_code is not None:
            _check_reason(route, reason_code, "-", row.meta)

    async def _try_decide(
        self,
        *,
        item_id: str,
        action: Action,
        actor: Actor,
        content: Mapping[str, Any] | None,
        reason_code: str | None,
        reason_text: str | None,
        choice: str | None = None,
        opened_at: datetime | None = None,
    ) -> tuple[ItemPublic, bool]:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            row = await item_store.get_item(session, item_id=item_id)
            if row is None:
                raise NotFound(f"no item {item_id}")
            session.expunge(row)  # changes go through conditional updates only
            history = await item_store.decisions_for(session, item_ids=[item_id])
            if row.state != ItemState.pending:
                raise already_settled(row, history)
            route = self._route(row.route)
            self._check_allowed(row=row, route=route, action=action, actor=actor)
            await check_daily_cap(session, route=route, actor=actor, now=now)
            shown = row.final_content or row.content  # what the reviewer had to read
            chosen = ab.resolve(  # a comparison's choice, for its candidate; else None
                kind=row.kind,
                content=row.content,
                swapped=row.ab_swapped,
                action=action,
                verdict=choice,
            )
            edited: dict[str, Any] | None = None
            if action == Action.edit:
                if content is None:
                    raise InvalidInput("an edit needs the edited content", field="content")
                edited = validate_edit(  # on top of an earlier (quorum) edit, not the original
                    get_kind(row.kind), row.final_content or row.content, dict(content)
                )
                if edited == (row.final_content or row.content):  # it agrees with the version
                    action, edited = Action.approve, None  # under review: an approval of it
            if action == Action.reject:
                _check_reason(route, reason_code, reason_text, row.meta)
            votes = [*votes_of(history), Vote(action, actor.key)]
            if action == Action.approve and actor.key in approvers(votes_of(history)):
                raise Conflict(
                    f"{actor.name} has already approved this item; "
                    f"{len(approvers(votes_of(history)))} of {route.quorum} approvals"
                )
            reached = len(approvers(votes)) >= route.quorum
            new_state, _ = next_state(ItemState(row.state), action, quorum_reached=reached)
            if new_state == ItemState.pending:
                decision = new_decision(
                    row, action, actor, now, edited=edited, choice=chosen.choice if chosen else None
                )
                fatigue.time_decision(decision, shown=shown, opened_at=opened_at, route=route)
                values: dict[str, Any] = {"updated_at": now}
                if edited is not None:
                    values["final_content"] = edited
                if not await item_store.update_item_if_version(
                    session, item_id=row.id, version=row.version, values=values
                ):
                    raise _Stale
                await item_store.add_decision(session, decision=decision)
                for key, value in values.items():
                    setattr(row, key, value)
                return item_public(row, [*history, decision], self._routes), False
            version = row.version
            settled = settle(
                row=row,
                history=history,
                route=route,
                routes=self._routes,
                action=action,
                actor=actor,
                now=now,
                max_attempts=self._max_attempts,
                edited=edited,
                reason_code=reason_code,
                reason_text=reason_text,
                released=chosen.final if chosen else None,
                choice=chosen.choice if chosen else None,
            )
            fatigue.time_decision(settled.decision, shown=shown, opened_at=opened_at, route=route)
            if not await item_store.update_item_if_version(
                session, item_id=row.id, version=version, values=settled.values
            ):
                raise _Stale
            await item_store.add_decision(session, decision=settled.decision)
            for delivery in settled.deliveries:
                await outbox_store.enqueue(session, delivery=delivery)
            return settled.item, True

    def _after_settle(self, item: ItemPublic) -> None:
        self._notifier.changed(item.id)
        self._on_queued()

    # -- helpers -----------------------------------------------------------------------

    def _route(self, name: str) -> Route:
        route = self._routes.get(name)
        if route is None:
            raise InvalidInput(
                f"unknown route {name!r}; known routes: {', '.join(self._routes.names())}",
                field="route",
            )
        return route

    @staticmethod
    def _check_allowed(*, row: Item, route: Route, action: Action, actor: Actor) -> None:
        if not route.may_decide(surface=actor.surface, user_id=actor.user_id, groups=actor.groups):
            raise NotAllowed(f"{actor.name} is not a reviewer of route {route.name!r}")
        if (
            action in (Action.approve, Action.edit)
            and row.requested_by is not None
            and row.requested_by in (actor.user_id, actor.name)
            and not route.allow_self_approval
        ):
            raise NotAllowed(
                f"route {route.name!r} does not let the requester approve their own item"
            )


def _check_reason(
    route: Route, code: str | None, text: str | None, meta: Mapping[str, Any] | None = None
) -> None:
    reasons = item_reject_reasons(route, meta)  # the route's, and the item's own (HumanLayer)
    if code is not None and code not in reasons:
        allowed = ", ".join(reasons) or "none; use reason_text"
        raise InvalidInput(
            f"{code!r} is not a reject reason of this route ({allowed})", field="reason_code"
        )
    if code is None and not (text and text.strip()):
        raise InvalidInput("a rejection needs a reason code or a reason text", field="reason")


def _refuse_nul(value: Any, *, path: str) -> None:
    """NUL cannot be stored in PostgreSQL text or JSONB: refuse it, naming where it is."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInput("must not contain NUL (\\u0000) characters", field=path or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path=path)
            _refuse_nul(item, path=f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _refuse_nul(item, path=f"{path}.{n}")


def _canonical(data: ItemCreate) -> str:
    """The request as canonical JSON: what an idempotent replay must match."""
    body = data.model_dump(mode="json")
    if body.get("prompt") is None:  # hashes as before the field existed: stored keys still match
        body.pop("prompt", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
