"""Everything Discord, wired: the bot, the surface, the review handler, and its
connection. The composition root makes one when ``SIGNOFF_DISCORD_TOKEN`` is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.audits import DiscordAudits
from adapters.discord.bot import DiscordReviews, DiscordSurface, SignoffBot
from bot.audits import AuditDesk
from bot.clock import Clock
from bot.digest import Digest
from bot.queue import ReviewQueue
from bot.reader import ItemReader
from bot.retry import ReleaseRetry
from bot.routes import RouteTable
from bot.service import ReviewService

log = logging.getLogger("signoff.discord")


@dataclass
class DiscordEdge:
    bot: SignoffBot
    surface: DiscordSurface
    token: str
    api_url: str
    gateway_url: str
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def connect(
        self,
        *,
        service: ReviewService,
        reader: ItemReader,
        routes: RouteTable,
        web_url: str,
        digest: Digest,
        retry: ReleaseRetry,
        queue: ReviewQueue | None = None,
        audits: AuditDesk | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.bot.reviews = DiscordReviews(
            service=service,
            reader=reader,
            routes=routes,
            web_url=web_url,
            digest=digest,
            retry=retry,
            queue=queue,
            clock=clock,
        )
        if audits is not None:
            self.bot.audits = DiscordAudits(desk=audits, web_url=web_url)

    async def login(self) -> None:
        """Log in over REST only: enough to post and edit (``signoff sweep --once``)."""
        # discord.py reads both from class attributes: one bot per process.
        discord.http.Route.BASE = self.api_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        await self.bot.login(self.token)

    async def start(self) -> None:
        """Log in over REST, then keep the gateway connection in the background."""
        await self.login()
        self.start_gateway()

    def start_gateway(self) -> None:
        """Open the gateway session (after :meth:`login`): only the leader replica does."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def stop_gateway(self) -> None:
        """Close the gateway session and keep REST logged in (this replica stops leading)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws = self.bot.ws
        if ws is not None and ws.open:
            await ws.close(code=1000)

    async def _run(self) -> None:
        try:
            await self.bot.connect(reconnect=True)
        except Exception:
            log.exception("discord: the gateway connection ended")

    async def stop(self) -> None:
        await self.bot.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def discord_edge(
    *, token: str, api_url: str, gateway_url: str, web_url: str, guild_ids: Sequence[int] = ()
) -> DiscordEdge:
    bot = SignoffBot(guild_ids=guild_ids)
    return DiscordEdge(
        bot=bot,
        surface=DiscordSurface(client=bot, web_url=web_url),
        token=token,
        api_url=api_url,
        gateway_url=gateway_url,
    )
