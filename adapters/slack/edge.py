"""Everything Slack, wired: the client, the surface, the bolt app, its HTTP endpoint and
Socket Mode. The composition root makes one when ``SIGNOFF_SLACK_BOT_TOKEN`` is set."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.groups import GroupResolver
from adapters.slack.interactions import SlackInteractions
from adapters.slack.surface import ChannelPacer, SlackSurface
from bot.audits import AuditDesk
from bot.clock import Clock
from bot.queue import ReviewQueue
from bot.reader import InboxReader, ItemReader
from bot.retry import ReleaseRetry
from bot.routes import RouteTable
from bot.service import ReviewService

EVENTS_PATH = "/slack/events"


def slack_client(*, token: str, api_url: str) -> AsyncWebClient:
    """A Web API client that waits out 429s (``Retry-After``) instead of failing."""
    client = AsyncWebClient(token=token, base_url=api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=5))
    return client


@dataclass
class SlackEdge:
    client: AsyncWebClient
    surface: SlackSurface
    app_token: str | None = None
    interactions: SlackInteractions | None = None
    _socket: AsyncSocketModeHandler | None = field(default=None, init=False)

    def connect(
        self,
        *,
        signing_secret: str | None,
        service: ReviewService,
        reader: ItemReader,
        routes: RouteTable,
        web_url: str,
        inbox: InboxReader,
        clock: Clock,
        retry: ReleaseRetry,
        queue: ReviewQueue | None = None,
        audits: AuditDesk | None = None,
    ) -> None:
        """Handle clicks and modals (needs the signing secret, or Socket Mode); ``retry``
        queues a failed release again from the card's Retry button; ``queue`` answers
        ``/signoff next``."""
        self.interactions = SlackInteractions(
            client=self.client,
            # In Socket Mode Slack signs nothing; bolt still wants a secret to be set.
            signing_secret=signing_secret or "socket-mode-only",
            service=service,
            reader=reader,
            routes=routes,
            groups=GroupResolver(client=self.client),
            web_url=web_url,
            inbox=inbox,
            clock=clock,
            retry=retry,
            queue=queue,
            audits=audits,
        )

    def mount(self, app: FastAPI) -> None:
        """``POST /slack/events``: Slack's request URL for interactivity in HTTP mode."""
        if self.interactions is None:
            return
        handler = AsyncSlackRequestHandler(self.interactions.app)

        @app.post(EVENTS_PATH, include_in_schema=False)
        async def slack_events(request: Request) -> Response:
            try:
                return await handler.handle(request)
            except ValueError:  # bolt parses the body before it checks the signature
                message = "not a Slack request: the body is not UTF-8, or its payload not JSON"
                return JSONResponse(
                    {"error": {"code": "invalid_body", "message": message}}, status_code=400
                )

    async def open(self) -> None:
        """One HTTP session, kept alive, for this process's Web API calls: without it
        slack_sdk opens (and TLS-handshakes) a new connection for every call."""
        if self.client.session is None or self.client.session.closed:
            self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout)
            )

    async def start(self) -> None:
        if self.app_token and self.interactions is not None:
            self._socket = AsyncSocketModeHandler(
                self.interactions.app, app_token=self.app_token, web_client=self.client
            )
            await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        try:
            await self.surface.drain()
            await self.stop_socket()
        finally:
            if self.client.session is not None:
                await self.client.session.close()
                self.client.session = None

    async def stop_socket(self) -> None:
        """Close the Socket Mode connection, if open (this replica stops leading)."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None


def slack_edge(*, token: str, api_url: str, app_token: str | None, web_url: str) -> SlackEdge:
    client = slack_client(token=token, api_url=api_url)
    surface = SlackSurface(client=client, web_url=web_url, pacer=ChannelPacer())
    return SlackEdge(client=client, surface=surface, app_token=app_token)
