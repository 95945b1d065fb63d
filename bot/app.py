"""Composition root: settings in, a running signoff out.

This is the one module of ``bot`` that may import adapters. It builds the engine, the
service, the enabled surfaces and targets, the release worker and the ASGI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
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
from bot.assist import Assistant
from bot.audits import AuditDesk
from bot.auth import KeyRing
from bot.batch_api import BATCH_PATH, mount_batch_api
from bot.clock import Clock, SystemClock
from bot.daily import DailyDigest
from bot.digest import Digest
from bot.drafting import Drafter
from bot.drift import DriftAlarm
from bot.errors import ConfigError
from bot.expiry import Expirer
from bot.fanout import SurfaceFanout
from bot.gold import GoldItems
from bot.humanlayer import HumanLayerDesk
from bot.humanlayer_routes import humanlayer_router
from bot.leader import LeaderElector, SoleLeader
from bot.limits import BodyLimit
from bot.metrics import metrics_router
from bot.netguard import check_literal_url
from bot.notify import Notifier
from bot.overrides import ThresholdOverrides
from bot.ports import DeliveryTarget, Surface
from bot.queue import ReviewQueue
from bot.queue_api import queue_router
from bot.reader import InboxReader, ItemReader
from bot.redraft import Redrafter
from bot.refusals import RefusalLog, redact_access_log
from bot.release import ReleaseWorker, RetryPolicy
from bot.retry import ReleaseRetry
from bot.routes import RouteTable, load_routes
from bot.scheduler import build_scheduler
from bot.service import ReviewService
from bot.settings import Settings
from bot.shutdown import Shutdown, wind_down
from bot.spending import Spending
from bot.sweep import Sweeper
from bot.tasks import TaskDesk
from bot.tasks_api import tasks_router
from storage.batch import GroupWriter
from storage.db import SessionFactory, make_engine, read_session_factory, session_factory
from storage.migrate import upgrade

if TYPE_CHECKING:
    from adapters.discord.edge import DiscordEdge
    from adapters.slack.edge import SlackEdge
    from storage.pg_notify import PgChangeFeed

log = logging.getLogger("signoff")


@dataclass
class System:
    """Everything a running signoff is made of."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionFactory
    reads: SessionFactory  # sessions that only read: on SQLite, without the write lock
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
    tasks: TaskDesk | None = None  # drafting tasks (POST /v1/tasks)
    redrafter: Redrafter | None = None  # "reject and redraft"
    drafter: Drafter | None = None  # the model, when one is configured
    # Replicas: change notices between processes (PostgreSQL), the gateway leadership,
    # and the graceful stop of the running lifespan.
    feed: PgChangeFeed | None = None
    leader: LeaderElector = field(
        default_factory=lambda: LeaderElector(lock=SoleLeader(), retry_seconds=2.0)
    )
    shutdown: Shutdown | None = None

    def begin_shutdown(self) -> None:
        """SIGTERM: end live streams and stop taking work; the lifespan does the rest."""
        self.broadcaster.close()
        if self.shutdown is not None:
            self.shutdown.begin()

    async def close(self) -> None:
        if self.feed is not None:
            await self.feed.close()  # sends change notices still queued
        closer = getattr(self.drafter, "aclose", None)
        if closer is not None:
            await closer()
        await self.http.aclose()
        await self.engine.dispose()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    routes: RouteTable | None = None,
    surfaces: Mapping[str, Surface] | None = None,
    targets: Mapping[str, DeliveryTarget] | None = None,
    drafter: Drafter | None = None,
) -> System:
    """Wire a system from settings; tests pass their own clock, routes or edges."""
    clock = clock or SystemClock()
    routes = routes or load_routes(settings.config, required=settings.config_explicit)
    if settings.allow_private_callbacks:
        routes = routes.allowing_private_callbacks()
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    sessions = session_factory(engine)
    reads = read_session_factory(engine)  # SQLite: reads that never wait for the write lock
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
    targets = dict(targets) if targets is not None else _targets(settings, http, routes)
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
            lease_seconds=(
                settings.release_lease_seconds or settings.release_timeout_seconds * 4 + 30
            ),
        ),
        on_change=notifier.changed,
        on_release=lambda item_id: refresh_cards(item_id),
    )
    feed = _change_feed(settings, notifier=notifier, worker=worker, engine=engine)
    fanout = SurfaceFanout(
        sessions=sessions, reads=reads, routes=routes, surfaces=surfaces, clock=clock
    )
    drafter = drafter or _drafter(settings, routes)
    _check_llm_routes(routes, drafter)
    spending = Spending(sessions=sessions, clock=clock)
    model = settings.openai_model or ""
    assistant = (
        Assistant(drafter=drafter, spending=spending, model=model) if drafter is not None else None
    )
    redrafter = (
        Redrafter(
            sessions=sessions,
            routes=routes,
            clock=clock,
            drafter=drafter,
            spending=spending,
            fanout=fanout,
            notifier=notifier,
            model=model,
            lease=timedelta(seconds=settings.task_lease_seconds),
            max_attempts=settings.release_max_attempts,
            on_queued=worker.wake,
            assistant=assistant,
        )
        if drafter is not None
        else None
    )
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
        reads=reads,
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
        assistant=assistant,
        redraft_lease=timedelta(seconds=settings.task_lease_seconds),
        on_redraft=redrafter.start if redrafter is not None else None,
    )
    tasks = TaskDesk(
        sessions=sessions,
        routes=routes,
        clock=clock,
        service=service,
        notifier=notifier,
        spending=spending,
        drafter=drafter,
        model=model,
        callbacks=targets.get("webhook"),
        lease=timedelta(seconds=settings.task_lease_seconds),
        redrafter=redrafter,
    )
    reader = ItemReader(sessions=reads, routes=routes, notifier=notifier)
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
                inbox=InboxReader(sessions=reads, routes=routes), routes=routes, clock=clock
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
            inbox=InboxReader(sessions=reads, routes=routes),
            clock=clock,
            retry=retry,
            queue=queue,
            audits=audits,
        )
    web = WebConsole(
        auth=WebAuth(sessions=sessions, clock=clock, public_url=settings.base_url),
        service=service,
        reader=reader,
        inbox=InboxReader(sessions=reads, routes=routes),
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
        feed=feed,
        leader=_elector(settings, slack=slack, discord=discord),
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        reads=reads,
        routes=routes,
        keys=KeyRing(sessions=sessions, clock=clock),
        service=service,
        reader=reader,
        worker=worker,
        notifier=notifier,
        http=http,
        broadcaster=broadcaster,
        watcher=ChangeWatcher(sessions=reads, broadcaster=broadcaster),
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
        tasks=tasks,
        redrafter=redrafter,
        drafter=drafter,
    )


def _drafter(settings: Settings, routes: RouteTable) -> Drafter | None:
    """The model from SIGNOFF_OPENAI_*, or None when no model is configured."""
    if not settings.openai_model:
        if settings.openai_api_key or settings.openai_base_url:
            raise ConfigError(
                "SIGNOFF_OPENAI_MODEL: name the model to draft with (an OpenAI key or base "
                "URL is set without one)"
            )
        return None
    try:
        from adapters.llm.openai_drafter import openai_drafter
    except ImportError as exc:
        raise ConfigError(
            "SIGNOFF_OPENAI_MODEL is set but OpenAI support is not installed "
            f"(pip install 'signoff[openai]'): {exc}"
        ) from None
    if settings.openai_model not in routes.prices.prices:
        known = ", ".join(sorted(routes.prices.prices)) or "none"
        raise ConfigError(
            f"prices: the route file has no price for model {settings.openai_model!r} "
            f"(priced: {known}); add prices.{settings.openai_model}.input_per_million and "
            "output_per_million (0 for a local model)"
        )
    return openai_drafter(
        api_key=settings.openai_api_key or "",
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        prices=routes.prices,
        timeout=settings.openai_timeout_seconds,
        max_retries=settings.openai_max_retries,
    )


def _check_llm_routes(routes: RouteTable, drafter: Drafter | None) -> None:
    if drafter is not None:
        return
    for name in routes.names():
        route = routes.get(name)
        assert route is not None
        llm = route.llm
        asks = [
            key
            for key, on in (
                ("judge", llm.judge is not None),
                ("aids", llm.aids is not None),
                ("max_revisions", llm.max_revisions > 1),
            )
            if on
        ]
        if asks:
            raise ConfigError(
                f"routes.{name}.llm.{asks[0]}: needs a model; set SIGNOFF_OPENAI_MODEL and "
                "SIGNOFF_OPENAI_API_KEY (or SIGNOFF_OPENAI_BASE_URL)"
            )


def _change_feed(
    settings: Settings, *, notifier: Notifier, worker: ReleaseWorker, engine: AsyncEngine
) -> PgChangeFeed | None:
    """On PostgreSQL: NOTIFY other replicas of changes made here, and hear theirs (a
    change may be a handed-back release, so the worker looks for due rows too)."""
    if not settings.database_url.startswith("postgresql"):
        return None  # SQLite: one serving process; its ChangeWatcher sees the CLI's changes
    from storage.pg_notify import PgChangeFeed, asyncpg_dsn

    def heard(item_id: str) -> None:
        notifier.received(item_id)
        worker.wake()

    feed = PgChangeFeed(dsn=asyncpg_dsn(settings.database_url), on_notice=heard, engine=engine)
    notifier.publish_to(feed.publish)
    return feed


def _elector(
    settings: Settings, *, slack: SlackEdge | None, discord: DiscordEdge | None
) -> LeaderElector:
    """Only the leader runs the Discord gateway and Slack Socket Mode; on PostgreSQL
    leadership is an advisory lock, on SQLite the one process leads."""

    async def elected() -> None:
        if discord is not None:
            discord.start_gateway()
        if slack is not None:
            await slack.start()  # Socket Mode, when an app token is set

    async def deposed() -> None:
        if discord is not None:
            await discord.stop_gateway()
        if slack is not None:
            await slack.stop_socket()

    if settings.database_url.startswith("postgresql"):
        from storage.pg_leader import PgAdvisoryLock
        from storage.pg_notify import asyncpg_dsn

        lock: PgAdvisoryLock | SoleLeader = PgAdvisoryLock(dsn=asyncpg_dsn(settings.database_url))
    else:
        lock = SoleLeader()
    return LeaderElector(
        lock=lock,
        retry_seconds=settings.leader_retry_seconds,
        on_elected=elected,
        on_deposed=deposed,
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


def _targets(
    settings: Settings, http: httpx.AsyncClient, routes: RouteTable
) -> dict[str, DeliveryTarget]:
    """The release targets this configuration makes available."""
    targets: dict[str, DeliveryTarget] = {
        "webhook": WebhookTarget(client=http, allow_private=_private_ok(routes)),
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


def _private_ok(routes: RouteTable) -> Callable[[str], bool]:
    """Whether a route may call private addresses (bot/netguard.py), by route name."""

    def allowed(name: str) -> bool:
        route = routes.get(name)
        return route is not None and route.allow_private_callbacks

    return allowed


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
            url = getattr(target, "url", None)
            problem = None if route.allow_private_callbacks else check_literal_url(url or "")
            if problem is not None:
                raise ConfigError(f"routes.{name}.{where}.url: {problem}")


def create_app(
    system: System, *, migrate: bool = True, run_worker: bool = True, run_scheduler: bool = True
) -> FastAPI:
    """The ASGI app; its lifespan applies migrations and runs the release worker and
    the scheduler (the escalation sweep and the daily digests)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await upgrade(system.engine)
        shutdown = system.shutdown = Shutdown(grace_seconds=system.settings.shutdown_grace_seconds)
        stop = shutdown.stopping  # set on SIGTERM (System.begin_shutdown) or below
        shutdown.on_begin(system.broadcaster.close)
        if system.feed is not None:
            system.feed.start()
        if system.slack is not None:
            await system.slack.open()
        if system.discord is not None:
            await system.discord.login()  # REST in every replica; the gateway in the leader
        await system.leader.step()  # a lone replica leads before it serves
        tasks = [
            asyncio.create_task(system.watcher.run(stop)),
            asyncio.create_task(system.leader.run(stop)),
        ]
        work: list[asyncio.Task[None]] = []  # finished or cancelled within the grace period
        if run_worker:
            work.append(asyncio.create_task(system.worker.run(stop)))
            if system.tasks is not None:  # takes over abandoned drafts, sends callbacks
                work.append(asyncio.create_task(system.tasks.run_loop(stop)))
        scheduler = build_scheduler(
            sweeper=system.sweeper,
            daily=system.daily,
            routes=system.routes,
            interval_seconds=system.settings.sweep_interval_seconds,
            sweep=system.settings.sweep_enabled,
        )
        if run_scheduler:
            scheduler.start()
            shutdown.on_begin(scheduler.pause)  # a sweep under way goes on until the deadline
        # What start-up made (routes, templates, SDK modules) lives as long as the
        # process: keep it out of the collector's full scans, which otherwise stall
        # the loop for tens of milliseconds (bench/sweep.py).
        gc.collect()
        gc.freeze()
        # Collect young objects after 50,000 net allocations rather than 700: the HTTP
        # stack alone triggered some 50 collections a second under load, 3-4% of the
        # server's time, and the full ones among them stalled requests (bench/ingest.py).
        gc.set_threshold(50_000, 10, 10)
        try:
            yield
        finally:
            await wind_down(
                shutdown=shutdown,
                leader=system.leader,
                background=tasks,
                work=work,
                worker=system.worker if run_worker else None,
                sweeper=system.sweeper if run_scheduler else None,
                stop_scheduler=(lambda: scheduler.shutdown(wait=False)) if run_scheduler else None,
            )
            with contextlib.suppress(Exception):  # else their leases run out instead
                for drafts in (system.tasks, system.redrafter):
                    if drafts is not None:
                        await drafts.hand_back()
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
            sessions=system.reads,
            max_wait_seconds=system.settings.max_wait_seconds,
            leading=lambda: system.leader.leading,
        )
    )
    app.include_router(queue_router(queue=system.queue, keys=system.keys))
    if system.tasks is not None:
        app.include_router(
            tasks_router(
                desk=system.tasks,
                keys=system.keys,
                max_wait_seconds=system.settings.max_wait_seconds,
            )
        )
    app.include_router(
        metrics_router(sessions=system.sessions, leading=lambda: system.leader.leading)
    )
    if system.humanlayer is not None:
        app.include_router(humanlayer_router(desk=system.humanlayer, keys=system.keys))
    if system.slack is not None:
        system.slack.mount(app)
    system.web.mount(app)
    mount_batch_api(app, system)
    app.add_middleware(
        BodyLimit,
        max_bytes=system.settings.max_body_bytes,
        paths={BATCH_PATH: system.settings.max_batch_body_bytes},
    )
    app.add_middleware(RefusalLog)  # outermost: logs every 4xx, the body limit's too
    redact_access_log()
    return app
