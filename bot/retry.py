"""Retrying a failed release: the Retry button on every surface and
``signoff releases retry`` end here.

A retry queues the same outbox rows again, with the same idempotency keys, so a target
that did get the first delivery (an e-mail's Message-ID, a git branch, a pull request's
head branch) recognises the repeat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.clock import Clock
from bot.errors import Conflict, NotAllowed, NotFound
from bot.notify import Notifier
from bot.outbox import RELEASE
from bot.ports import Actor
from bot.routes import RouteTable
from bot.schemas import ItemPublic
from bot.states import ReleaseState, next_release_state
from bot.views import item_public
from storage import items as item_store
from storage import outbox as outbox_store
from storage.db import SessionFactory


class ReleaseRetry:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        clock: Clock,
        notifier: Notifier,
        max_attempts: int,
        refresh: Callable[[ItemPublic], Awaitable[None]],
        on_queued: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._clock = clock
        self._notifier = notifier
        self._max_attempts = max_attempts
        self._refresh = refresh
        self._on_queued = on_queued

    async def retry(self, *, item_id: str, actor: Actor | None = None) -> ItemPublic:
        """Queue a failed release again. ``actor`` (a surface's clicker) must be one of
        the route's reviewers; None is the operator at the command line.

        Raises NotFound, NotAllowed, or Conflict when the release is not ``failed``.
        """
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            row = await item_store.get_item(session, item_id=item_id)
            if row is None:
                raise NotFound(f"no item {item_id}")
            route = self._routes.get(row.route)
            if (
                actor is not None
                and route is not None
                and not route.may_decide(
                    surface=actor.surface, user_id=actor.user_id, groups=actor.groups
                )
            ):
                raise NotAllowed(f"{actor.name} is not a reviewer of route {row.route!r}")
            if row.release_state != ReleaseState.failed:
                raise Conflict(
                    f"the release of item {item_id} is {row.release_state}, not failed; "
                    "only a failed release can be retried"
                )
            session.expunge(row)
            values = {
                "release_state": next_release_state(ReleaseState.failed, ReleaseState.queued).value,
                "release_error": None,
                "updated_at": now,
            }
            if not await item_store.update_item_if_version(
                session, item_id=item_id, version=row.version, values=values
            ):
                raise Conflict(f"item {item_id} changed meanwhile; try again")
            await outbox_store.requeue_failed(
                session,
                item_id=item_id,
                purpose=RELEASE,
                now=now,
                more_attempts=self._max_attempts,
            )
            history = await item_store.decisions_for(session, item_ids=[item_id])
            for key, value in values.items():
                setattr(row, key, value)
            row.version += 1
            item = item_public(row, history, self._routes)
        self._notifier.changed(item_id)
        self._on_queued()
        await self._refresh(item)
        return item
