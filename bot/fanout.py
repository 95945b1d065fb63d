"""Posting cards to a route's surfaces, and refreshing them after every change.

Runs after the deciding transaction has committed: a surface outage never loses or
undoes a decision; it is logged, and the card is refreshed at the next change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.card import ReviewCard
from bot.clock import Clock
from bot.ports import Surface
from bot.present import build_card
from bot.routes import Route, RouteTable, SurfaceConfig
from bot.schemas import ItemPublic
from storage import items as item_store
from storage.db import SessionFactory
from storage.models import Post

log = logging.getLogger("signoff.fanout")
RETRY_POSTING = timedelta(seconds=30)  # a card that failed to post: the sweep tries again


class SurfaceFanout:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        clock: Clock,
        reads: SessionFactory | None = None,
    ) -> None:
        self._sessions = sessions
        self._reads = reads or sessions  # where cards are, without the write lock
        self._routes = routes
        self._surfaces = surfaces
        self._clock = clock

    def chat_targets(self, route: Route) -> list[SurfaceConfig]:
        """The route's chat surfaces that are enabled here: cards there must be posted."""
        return [t for t in route.surfaces if t.type != "web" and t.type in self._surfaces]

    async def post(self, item: ItemPublic, *, missing_only: bool = False) -> bool:
        """Show a pending item on each surface of its route and remember where; with
        ``missing_only``, only where no card of it is recorded yet (a retry). True when
        every chat card is posted: the item's ``post_due_at`` is then cleared."""
        route = self._routes.get(item.route)
        if route is None:
            return True
        card = build_card(item, route)
        if not missing_only:
            for target in route.surfaces:
                if target.type == "web" and "web" in self._surfaces:
                    await self._post_card(item.id, card, surface="web", channel=None)
        todo = self.chat_targets(route)
        if missing_only:
            async with self._sessions() as session:
                have = {
                    (p.surface, p.channel)
                    for p in await item_store.posts_for(session, item_id=item.id)
                }
            todo = [t for t in todo if (t.type, t.channel) not in have]
        posted = 0
        for n, target in enumerate(todo):
            last = n == len(todo) - 1 and posted == n
            post = await self._post_card(
                item.id, card, surface=target.type, channel=target.channel, all_done=last
            )
            posted += post is not None
        if not todo and missing_only:
            await self._set_post_due(item.id, None)
        elif posted < len(todo) and not missing_only:  # a surface is down: retry soon
            await self._set_post_due(item.id, self._clock.now() + RETRY_POSTING)
        return posted == len(todo)

    async def _set_post_due(self, item_id: str, at: datetime | None) -> None:
        async with self._sessions() as session, session.begin():
            await item_store.set_post_due(session, item_id=item_id, at=at)

    async def post_to(self, item: ItemPublic, *, surface: str, channel: str | None) -> Post | None:
        """Show the card on one more surface channel (an escalation); None if it failed."""
        route = self._routes.get(item.route)
        if route is None:
            return None
        return await self._post_card(
            item.id, build_card(item, route), surface=surface, channel=channel
        )

    async def _post_card(
        self,
        item_id: str,
        card: ReviewCard,
        *,
        surface: str,
        channel: str | None,
        all_done: bool = False,
    ) -> Post | None:
        edge = self._surfaces.get(surface)
        if edge is None:
            log.warning("item %s: surface %s is not enabled; not posted", item_id, surface)
            return None
        try:
            ref = await edge.post(card=card, channel=channel)
        except Exception:
            log.exception("item %s: posting to %s failed", item_id, surface)
            return None
        if ref is None:
            return None
        async with self._sessions() as session, session.begin():
            if all_done:  # the item's last card: nothing is left for a sweep to post
                await item_store.set_post_due(session, item_id=item_id, at=None)
            return await item_store.add_post(
                session,
                post=Post(
                    item_id=item_id,
                    surface=surface,
                    channel=channel,
                    ref=dict(ref),
                    posted_at=self._clock.now(),
                ),
            )

    async def refresh(self, item: ItemPublic) -> None:
        """Update every posted card of ``item`` to its current state."""
        route = self._routes.get(item.route)
        if route is None:
            return
        async with self._reads() as session:
            posts = await item_store.posts_for(session, item_id=item.id)
        card = build_card(item, route)
        for post in posts:
            surface = self._surfaces.get(post.surface)
            if surface is None:
                continue
            try:
                await surface.update(card=card, ref=post.ref)
            except Exception:
                log.exception("item %s: updating the %s card failed", item.id, post.surface)
