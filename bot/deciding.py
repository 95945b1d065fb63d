"""Deciding: the one code path for a human decision, whichever surface the click came
from (Slack, Discord, the web inbox, the API, the command line).

``decide`` is a conditional update on the item's version inside one transaction that
also appends the decision and queues the outbox rows, so of any number of racing
clicks exactly one settles the item, and a settled item always has its release queued.
``precheck`` raises what ``decide`` would, without deciding, for surfaces that must
answer before they decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot import ab, fatigue
from bot.clock import Clock
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.fanout import SurfaceFanout
from bot.intake import route_named
from bot.kinds import get_kind, validate_edit
from bot.notify import Notifier
from bot.policy import Vote, approvers
from bot.ports import Actor
from bot.reasons import item_reject_reasons
from bot.redraft_rules import check_redraftable
from bot.reviewer_stats import check_daily_cap
from bot.routes import Route, RouteTable
from bot.schemas import ItemPublic
from bot.settle import already_settled, new_decision, settle
from bot.states import Action, ItemState, next_state
from bot.views import item_public, votes_of
from storage import items as item_store
from storage import outbox as outbox_store
from storage.db import SessionFactory
from storage.models import Item

_MAX_RACE_RETRIES = 500


class _Stale(Exception):
    """The item changed between read and conditional update; read again."""


class Decider:
    """Records human decisions; reached through :meth:`bot.service.ReviewService.decide`."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        reads: SessionFactory,
        routes: RouteTable,
        fanout: SurfaceFanout,
        clock: Clock,
        notifier: Notifier,
        release_max_attempts: int,
        on_queued: Callable[[], None],
        redraft_lease: timedelta,
        on_redraft: Callable[[str], None],
    ) -> None:
        self._sessions = sessions
        self._reads = reads  # prechecks, without the write lock
        self._routes = routes
        self._fanout = fanout
        self._clock = clock
        self._notifier = notifier
        self._max_attempts = release_max_attempts
        self._on_queued = on_queued
        self._redraft_lease = redraft_lease
        self._on_redraft = on_redraft  # starts a redraft (bot/redraft.py)

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
        """Record a human decision: approve, edit (approve a changed version), reject, or
        redraft (reject with a reason the model drafts the next revision from, on items
        drafted from a task whose route allows more revisions; bot/redraft.py).

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
        if action not in (Action.approve, Action.edit, Action.reject, Action.redraft):
            raise InvalidInput(f"{action.value} is not a reviewer action", field="action")
        for _ in range(_MAX_RACE_RETRIES):
            try:
                item, queued = await self._try_decide(
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
            self._notifier.changed(item.id)
            if queued:  # only then has the release worker something new to do
                self._on_queued()
            await self._fanout.refresh(item)
            if action == Action.redraft:
                self._on_redraft(item.id)  # after commit: the lease covers a crash from here
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
        async with self._reads() as session:
            row = await item_store.get_item(session, item_id=item_id)
            if row is None:
                raise NotFound(f"no item {item_id}")
            if row.state != ItemState.pending:
                history = await item_store.decisions_for(session, item_ids=[item_id])
                raise already_settled(row, history)
        route = self._route(row.route)
        self._check_allowed(row=row, route=route, action=action, actor=actor)
        _check_not_redrafting(row)
        if action == Action.redraft:
            check_redraftable(row, route)
        async with self._reads() as session:
            await check_daily_cap(session, route=route, actor=actor, now=self._clock.now())
        if action == Action.edit and content is not None:  # None: the form is not filled yet
            validate_edit(get_kind(row.kind), row.final_content or row.content, dict(content))
        if action in (Action.reject, Action.redraft) and reason_code is not None:
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
    ) -> tuple[ItemPublic, int]:
        """The item as decided, and how many deliveries its settling queued."""
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
            _check_not_redrafting(row)
            if action == Action.redraft:
                check_redraftable(row, route)
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
            if action in (Action.reject, Action.redraft):
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
                    row,
                    action,
                    actor,
                    now,
                    edited=edited,
                    choice=chosen.choice if chosen else None,
                    reason_code=reason_code if action == Action.redraft else None,
                    reason_text=reason_text if action == Action.redraft else None,
                )
                fatigue.time_decision(decision, shown=shown, opened_at=opened_at, route=route)
                values: dict[str, Any] = {"updated_at": now}
                if edited is not None:
                    values["final_content"] = edited
                if action == Action.redraft:  # held until the next revision is posted
                    values["redraft_until"] = now + self._redraft_lease
                if not await item_store.update_item_if_version(
                    session, item_id=row.id, version=row.version, values=values
                ):
                    raise _Stale
                await item_store.add_decision(session, decision=decision)
                for key, value in values.items():
                    setattr(row, key, value)
                return item_public(row, [*history, decision], self._routes), 0
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
            return settled.item, len(settled.deliveries)

    # -- helpers -----------------------------------------------------------------------

    def _route(self, name: str) -> Route:
        return route_named(self._routes, name)

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


def _check_not_redrafting(row: Item) -> None:
    if row.redraft_until is not None:
        raise Conflict(
            f"revision {row.revision} of item {row.id} was rejected and is being redrafted; "
            "decide on the next revision once it is posted"
        )
