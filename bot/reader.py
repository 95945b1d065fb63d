"""Reading items: one, a page, or one held until it is decided (long poll)."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from datetime import datetime

from bot.errors import InvalidInput, NotFound
from bot.notify import Notifier
from bot.routes import RouteTable
from bot.schemas import ItemPage, ItemPublic
from bot.states import ItemState
from bot.views import item_public
from storage import items as item_store
from storage import stats as stats_store
from storage import steps as step_store
from storage.db import SessionFactory
from storage.models import Decision, DeliveryAttempt, StepRun

# Another replica may decide the item; its notice does not reach this process, so a
# waiting reader also looks at the database this often.
RECHECK_SECONDS = 1.0


class ItemReader:
    def __init__(self, *, sessions: SessionFactory, routes: RouteTable, notifier: Notifier) -> None:
        self._sessions = sessions
        self._routes = routes
        self._notifier = notifier

    async def get(self, *, item_id: str, integrator_id: int | None = None) -> ItemPublic:
        """The item; NotFound if it does not exist or belongs to another integrator."""
        async with self._sessions() as session:
            row = await item_store.get_item(session, item_id=item_id, integrator_id=integrator_id)
            if row is None:
                raise NotFound(f"no item {item_id}")
            decisions = await item_store.decisions_for(session, item_ids=[row.id])
        return item_public(row, decisions, self._routes)

    async def wait(
        self, *, item_id: str, integrator_id: int | None = None, within: float
    ) -> ItemPublic:
        """The item once it is no longer pending, or as it is after ``within`` seconds."""
        # Real elapsed time, not the injected clock: this bounds how long a request is held.
        deadline = time.monotonic() + within
        while True:
            item = await self.get(item_id=item_id, integrator_id=integrator_id)
            remaining = deadline - time.monotonic()
            if item.state != ItemState.pending or remaining <= 0:
                return item
            await self._notifier.wait(item_id, within=min(remaining, RECHECK_SECONDS))

    async def page(
        self,
        *,
        integrator_id: int | None,
        state: str | None = None,
        route: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> ItemPage:
        """A page of items, newest first; ``next_cursor`` continues after the last one."""
        if state is not None and state not in ItemState.__members__:
            raise InvalidInput(
                f"unknown state {state!r}; expected one of {', '.join(ItemState)}", field="state"
            )
        before = _decode_cursor(cursor) if cursor else None
        async with self._sessions() as session:
            rows = await item_store.list_items(
                session,
                integrator_id=integrator_id,
                state=state,
                route=route,
                before_id=before,
                limit=limit + 1,
            )
            decisions = await item_store.decisions_for(
                session, item_ids=[r.id for r in rows[:limit]]
            )
        by_item: dict[str, list[Decision]] = {}
        for d in decisions:
            by_item.setdefault(d.item_id, []).append(d)
        items = [item_public(r, by_item.get(r.id, []), self._routes) for r in rows[:limit]]
        more = len(rows) > limit
        return ItemPage(items=items, next_cursor=_encode_cursor(items[-1].id) if more else None)


def _encode_cursor(item_id: str) -> str:
    return base64.urlsafe_b64encode(item_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:  # binascii.Error, UnicodeDecodeError, or a non-ASCII cursor
        value = ""
    if not value.startswith("itm_"):
        raise InvalidInput("not a cursor this API gave out", field="cursor")
    return value


class InboxReader:
    """What a reviewer's inbox shows: items of some routes, and counts per route."""

    def __init__(self, *, sessions: SessionFactory, routes: RouteTable) -> None:
        self._sessions = sessions
        self._routes = routes

    async def items(
        self,
        *,
        routes: Sequence[str],
        state: str | None = "pending",
        route: str | None = None,
        kind: str | None = None,
        limit: int = 200,
    ) -> list[ItemPublic]:
        """Items of ``routes``, oldest due first."""
        async with self._sessions() as session:
            rows = await item_store.inbox(
                session, routes=routes, state=state, route=route, kind=kind, limit=limit
            )
            decisions = await item_store.decisions_for(session, item_ids=[r.id for r in rows])
        by_item: dict[str, list[Decision]] = {}
        for d in decisions:
            by_item.setdefault(d.item_id, []).append(d)
        return [item_public(r, by_item.get(r.id, []), self._routes) for r in rows]

    async def pending_counts(self, *, routes: Sequence[str]) -> dict[str, int]:
        async with self._sessions() as session:
            return await item_store.pending_counts(session, routes=routes)

    async def attempts(self, *, item_id: str) -> list[DeliveryAttempt]:
        """Every delivery attempt of the item (releases and callbacks), oldest first."""
        async with self._sessions() as session:
            return await item_store.attempts_for(session, item_id=item_id)

    async def steps(self, *, item_id: str) -> list[StepRun]:
        """The item's escalation steps (reminders, escalations, expiry), oldest first."""
        async with self._sessions() as session:
            return await step_store.runs_for(session, item_id=item_id)

    async def outcomes_between(
        self, *, routes: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, int]:
        """How many items of ``routes`` were settled in ``[since, until)``, per outcome."""
        async with self._sessions() as session:
            rows = await stats_store.decided_between(
                session, routes=routes, since=since, until=until
            )
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.outcome] = counts.get(row.outcome, 0) + 1
        return counts
