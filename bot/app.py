"""Composition root: settings in, a running signoff out.

This is the one module of ``bot`` that may import adapters. It builds the engine, the
service, the enabled surfaces and targets, the release worker and the ASGI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.targets.email import EmailTarget
from adapters.targets.git import GitTarget
from adapters.targets.github import GithubTarget
from adapters.targets.webhook import WebhookTarget
from adapters.web.auth import WebAuth
from adapters.web.live import Broadcaster, ChangeWatcher
from adapters.web.pages import WebConsole
from adapters.web.surface import WebSurface
from bot.api import build_router, document_bearer_auth, install_error_handlers
from bot.audits import AuditDesk
from bot.auth import KeyRing
from bot.clock import Clock, SystemClock
from bot.daily import DailyDigest
from bot.digest import Digest
from bot.drift import DriftAlarm
from bot.errors import ConfigError
from bot.expiry import Expirer
from bot.fanout import SurfaceFanout
from bot.gold import GoldItems
from bot.humanlayer import HumanLayerDesk
from bot.humanlayer_routes import humanlayer_router
from bot.limits import BodyLimit
from bot.metrics import metrics_router
from bot.notify import Notifier
from bot.overrides import ThresholdOverrides
from bot.ports import DeliveryTarget, Surface
from bot.queue import ReviewQueue
from bot.queue_api import queue_router
from bot.reader import InboxReader, ItemReader
from bot.release import ReleaseWorker, RetryPolicy
from bot.retry import ReleaseRetry
from bot.routes import RouteTable, load_routes
from bot.scheduler import build_scheduler
from bot.service import ReviewService
from bot.settings import Settings
from bot.sweep import Sweeper
from storage.batch import GroupWriter
from storage.db import SessionFactory, make_engine, session_factory
from storage.migrate import upgrade

if TYPE_CHECKING:
    from adapters.discord.edge import DiscordEdge
    from adapters.slack.edge import SlackEdge

log = logging.getLogger("signoff")


@dataclass
class System:
    """Everything a running signoff is made of."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionFactory
    routes: RouteTable
    keys: KeyRing
    service: ReviewService
    reader: ItemReader
    worker: ReleaseWorker
    notifier: Notifier
    http: httpx.AsyncClient
    broadcaster: Broadcaster
    watcher: ChangeWatcher
    web: WebConsole
    retry: ReleaseRetry
    sweeper: Sweeper
    daily: DailyDigest
    queue: ReviewQueue
    slack: SlackEdge | None = None
    discord: DiscordEdge | None = None
    gold: GoldItems | None = None  # the routes' gold items (tests reseed ``gold.rng``)
    audits: AuditDesk | None = None  # blind audits of automatic decisions
    overrides: ThresholdOverrides | None = None  # thresholds the drift alarm changed
    humanlayer: HumanLayerDesk | None = None  # the HumanLayer-compatible API's requests

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    routes: RouteTable | None = None,
    surfaces: Mapping[str, Surface] | None = None,
    targets: Mapping[str, DeliveryTarget] | None = None,
) -> System:
    """Wire a system from settings; tests pass their own clock, routes or edges."""
    clock = clock or SystemClock()
    routes = routes or load_routes(settings.config, required=settings.config_explicit)
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    sessions = session_factory(engine)
    http = httpx.AsyncClient(timeout=settings.release_timeout_seconds, follow_redirects=False)
    broadcaster = Broadcaster()
    slack = _slack(settings)
    discord = _discord(settings)
    if surfaces is None:
        surfaces = {"web": WebSurface(broadcaster=broadcaster)}
        if slack is not None:
            surfaces["slack"] = slack.surface
        if discord is not None:
            surfaces["discord"] = discord.surface
    surfaces = dict(surfaces)
    targets = dict(targets) if targets is not None else _targets(settings, http)
    _check_routes(routes, targets)
    notifier = Notifier()
    notifier.listen(broadcaster.publish)
    worker = ReleaseWorker(
        sessions=sessions,
        targets=targets,
        clock=clock,
        policy=RetryPolicy(
            base_seconds=settings.release_backoff_seconds,
            max_seconds=settings.release_backoff_max_seconds,
            lease_seconds=settings.release_timeout_seconds * 4 + 30,
        ),
        on_change=notifier.changed,
        on_release=lambda item_id: refresh_cards(item_id),
    )
    fanout = SurfaceFanout(sessions=sessions, routes=routes, surfaces=surfaces, clock=clock)
    retry = ReleaseRetry(
        sessions=sessions,
        routes=routes,
        clock=clock,
        notifier=notifier,
        max_attempts=settings.release_max_attempts,
        refresh=fanout.refresh,
        on_queued=worker.wake,
    )
    overrides = ThresholdOverrides(sessions=sessions, clock=clock)
    audits = AuditDesk(sessions=sessions, routes=routes, surfaces=surfaces, clock=clock)
    drift = DriftAlarm(
        sessions=sessions,
        routes=routes,
        surfaces=surfaces,
        clock=clock,
        overrides=overrides,
        web_url=settings.base_url,
    )
    sweeper = Sweeper(
        sessions=sessions,
        routes=routes,
        surfaces=surfaces,
        fanout=fanout,
        notifier=notifier,
        expirer=Expirer(
            sessions=sessions, routes=routes, max_attempts=settings.release_max_attempts
        ),
        clock=clock,
        web_url=settings.base_url,
        lease_seconds=settings.sweep_lease_seconds,
        on_queued=worker.wake,
        drift=drift,
    )
    daily = DailyDigest(
        sessions=sessions, routes=routes, surfaces=surfaces, clock=clock, web_url=settings.base_url
    )
    gold = GoldItems.from_routes(  # a missing or bad gold file stops the start here
        routes, sessions=sessions, clock=clock, base=settings.config.parent
    )
    service = ReviewService(
        sessions=sessions,
        routes=routes,
        fanout=fanout,
        clock=clock,
        notifier=notifier,
        writer=GroupWriter(sessions=sessions),
        audits=audits,
        thresholds=overrides,
        gold=gold,
        release_max_attempts=settings.release_max_attempts,
        on_queued=worker.wake,
    )
    reader = ItemReader(sessions=sessions, routes=routes, notifier=notifier)
    queue = ReviewQueue(sessions=sessions, routes=routes, clock=clock, thresholds=overrides)

    async def refresh_cards(item_id: str) -> None:  # after a release ends: on every card
        await fanout.refresh(await reader.get(item_id=item_id))

    if discord is not None:
        discord.connect(
            service=service,
            reader=reader,
            routes=routes,
            web_url=settings.base_url,
            digest=Digest(
                inbox=InboxReader(sessions=sessions, routes=routes), routes=routes, clock=clock
            ),
            retry=retry,
            queue=queue,
            audits=audits,
            clock=clock,
        )
    if slack is not None:
        slack.connect(
            signing_secret=settings.slack_signing_secret,
            service=service,
            reader=reader,
            routes=routes,
            web_url=settings.base_url,
            inbox=InboxReader(sessions=sessions, routes=routes),
            clock=clock,
            retry=retry,
            queue=queue,
            audits=audits,
        )
    web = WebConsole(
        auth=WebAuth(sessions=sessions, clock=clock, public_url=settings.base_url),
        service=service,
        reader=reader,
        inbox=InboxReader(sessions=sessions, routes=routes),
        routes=routes,
        broadcaster=broadcaster,
        sessions=sessions,
        clock=clock,
        retry=retry,
        queue=queue,
        audits=audits,
        secure_cookies=settings.base_url.startswith("https://"),
    )
    return System(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        routes=routes,
        keys=KeyRing(sessions=sessions, clock=clock),
        service=service,
        reader=reader,
        worker=worker,
        notifier=notifier,
        http=http,
        broadcaster=broadcaster,
        watcher=ChangeWatcher(sessions=sessions, broadcaster=broadcaster),
        web=web,
        retry=retry,
        sweeper=sweeper,
        daily=daily,
        queue=queue,
        slack=slack,
        discord=discord,
        gold=gold,
        audits=audits,
        overrides=overrides,
        humanlayer=HumanLayerDesk(
            service=service,
            sessions=sessions,
            routes=routes,
            surfaces=surfaces,
            fanout=fanout,
            notifier=notifier,
            clock=clock,
        ),
    )


def _slack(settings: Settings) -> SlackEdge | None:
    if not settings.slack_bot_token:
        return None
    try:
        from adapters.slack.edge import slack_edge
    except ImportError as exc:
        raise ConfigError(
            "SIGNOFF_SLACK_BOT_TOKEN is set but Slack support is not installed "
            f"(pip install 'signoff[slack]'): {exc}"
        ) from None
    return slack_edge(
        token=settings.slack_bot_token,
        api_url=settings.slack_api_url,
        app_token=settings.slack_app_token,
        web_url=settings.base_url,
    )


def _discord(settings: Settings) -> DiscordEdge | None:
    if not settings.discord_token:
        return None
    try:
        from adapters.discord.edge import discord_edge
    except ImportError as exc:
        raise ConfigError(
            "SIGNOFF_DISCORD_TOKEN is set but Discord support is not installed "
            f"(pip install 'signoff[discord]'): {exc}"
        ) from None
    return discord_edge(
        token=settings.discord_token,
        api_url=settings.discord_api_url,
        gateway_url=settings.discord_gateway_url,
        web_url=settings.base_url,
        guild_ids=settings.discord_guild_ids,
    )


def _targets(settings: Settings, http: httpx.AsyncClient) -> dict[str, DeliveryTarget]:
    """The release targets this configuration makes available."""
    targets: dict[str, DeliveryTarget] = {
        "webhook": WebhookTarget(client=http),
        "git": GitTarget(timeout=max(60.0, settings.release_timeout_seconds)),
    }
    if settings.smtp_url:
        targets["email"] = EmailTarget(
            smtp_url=settings.smtp_url, timeout=settings.release_timeout_seconds
        )
    if settings.github_token:
        targets["github"] = GithubTarget(
            client=http, api_url=settings.github_api_url, token=settings.github_token
        )
    return targets


# What makes a target type available, for the error when a route names a missing one.
_NEEDS = {"email": "set SIGNOFF_SMTP_URL", "github": "set SIGNOFF_GITHUB_TOKEN"}


def _check_routes(routes: RouteTable, targets: Mapping[str, DeliveryTarget]) -> None:
    for name in routes.names():
        route = routes.get(name)
        if route is None:
            continue
        for where, target in route.named_targets():
            if target.type not in targets:
                raise ConfigError(
                    f"routes.{name}.{where}.type: the {target.type!r} target is not available "
                    f"({_NEEDS.get(target.type, 'not in this build')}; available: "
                    f"{', '.join(sorted(targets))})"
                )


def create_app(
    system: System, *, migrate: bool = True, run_worker: bool = True, run_scheduler: bool = True
) -> FastAPI:
    """The ASGI app; its lifespan applies migrations and runs the release worker and
    the scheduler (the escalation sweep and the daily digests)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await upgrade(system.engine)
        stop = asyncio.Event()
        if system.slack is not None:
            await system.slack.start()
        if system.discord is not None:
            await system.discord.start()
        tasks = [asyncio.create_task(system.watcher.run(stop))]
        if run_worker:
            tasks.append(asyncio.create_task(system.worker.run(stop)))
        scheduler = build_scheduler(
            sweeper=system.sweeper,
            daily=system.daily,
            routes=system.routes,
            interval_seconds=system.settings.sweep_interval_seconds,
            sweep=system.settings.sweep_enabled,
        )
        if run_scheduler:
            scheduler.start()
        # What start-up made (routes, templates, SDK modules) lives as long as the
        # process: keep it out of the collector's full scans, which otherwise stall
        # the loop for tens of milliseconds (bench/sweep.py).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if run_scheduler:
                scheduler.shutdown(wait=False)
            system.broadcaster.close()
            stop.set()
            await asyncio.gather(*tasks)
            if system.slack is not None:
                await system.slack.stop()
            if system.discord is not None:
                await system.discord.stop()
            await system.close()

    app = FastAPI(
        title="signoff",
        version="0.1.0",
        summary="Human review of AI output: submit drafts, get decisions, release once.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    document_bearer_auth(app)
    app.include_router(
        build_router(
            service=system.service,
            reader=system.reader,
            keys=system.keys,
            sessions=system.sessions,
            max_wait_seconds=system.settings.max_wait_seconds,
        )
    )
    app.include_router(queue_router(queue=system.queue, keys=system.keys))
    app.include_router(metrics_router(sessions=system.sessions))
    if system.humanlayer is not None:
        app.include_router(humanlayer_router(desk=system.humanlayer, keys=system.keys))
    if system.slack is not None:
        system.slack.mount(app)
    system.web.mount(app)
    app.add_middleware(BodyLimit, max_bytes=system.settings.max_body_bytes)
    return app
