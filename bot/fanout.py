"""Posting cards to a route's surfaces, and refreshing them after every change.

Runs after the deciding transaction has committed: a surface outage never loses or
undoes a decision; it is logged, and the card is refreshed at the next change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.card import ReviewCard
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
            await self._post_card(item.id, card, surface=target.type, channel=target.channel)

    async def post_to(self, item: ItemPublic, *, surface: str, channel: str | None) -> Post | None:
        """Show the card on one more surface channel (an escalation); None if it failed."""
        route = self._routes.get(item.route)
        if route is None:
            return None
        return await self._post_card(
            item.id, build_card(item, route), surface=surface, channel=channel
        )

    async def _post_card(
        self, item_id: str, card: ReviewCard, *, surface: str, channel: str | None
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
