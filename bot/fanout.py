"""Posting cards to a route's surfaces, and refreshing them after every change.

Runs after the deciding transaction has committed: a surface outage never loses or
undoes a decision; it is logged, and the card is refreshed at the next change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.clock import Clock
from bot.ports import Surface
from bot.present import build_card
from bot.routes import RouteTable
from bot.schemas import ItemPublic
from storage import items as item_store
from storage.db import SessionFactory
from storage.models import Post

log = logging.getLogger("signoff.fanout")


class SurfaceFanout:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._clock = clock

    async def post(self, item: ItemPublic) -> None:
        """Show a pending item on each surface of its route and remember where."""
        route = self._routes.get(item.route)
        if route is None:
            return
        card = build_card(item, route)
        for target in route.surfaces:
            surface = self._surfaces.get(target.type)
            if surface is None:
                log.warning("item %s: surface %s is not enabled; not posted", item.id, target.type)
                continue
            try:
                ref = await surface.post(card=card, channel=target.channel)
            except Exception:
                log.exception("item %s: posting to %s failed", item.id, target.type)
                continue
            if ref is None:
                continue
            async with self._sessions() as session, session.begin():
                await item_store.add_post(
                    session,
                    post=Post(
                        item_id=item.id,
                        surface=target.type,
                        channel=target.channel,
                        ref=dict(ref),
                        posted_at=self._clock.now(),
                    ),
                )

    async def refresh(self, item: ItemPublic) -> None:
        """Update every posted card of ``item`` to its current state."""
        route = self._routes.get(item.route)
        if route is None:
            return
        async with self._sessions() as session:
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
