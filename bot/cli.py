"""The ``signoff`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from fastapi import APIRouter
from pydantic import ValidationError

from bot.app import System, build, create_app
from bot.dberrors import database_unavailable, unavailable_reason
from bot.errors import ConfigError, SignoffError
from bot.outbox import RELEASE
from bot.ports import Actor
from bot.routes import RouteTable
from bot.schemas import ItemCreate
from bot.settings import Settings, load_settings
from bot.shutdown import drain_seconds
from storage import outbox as outbox_store
from storage.migrate import upgrade

T = TypeVar("T")

app = typer.Typer(
    help="signoff: human review of AI output.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals hold settings: tokens, passwords
)
keys_app = typer.Typer(help="Integrator API keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
releases_app = typer.Typer(help="Releases to targets.", no_args_is_help=True)
users_app = typer.Typer(help="Web reviewers.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(releases_app, name="releases")

HostOpt = Annotated[str | None, typer.Option(help="Listen address [SIGNOFF_HOST].")]
PortOpt = Annotated[int | None, typer.Option(help="Listen port [SIGNOFF_PORT].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _with_system(settings: Settings, work: Callable[[System], Awaitable[T]]) -> T:
    async def main() -> T:
        system = build(settings)
        try:
            await upgrade(system.engine)
            return await work(system)
        finally:
            await system.close()

    return asyncio.run(main())


def _serve(
    settings: Settings,
    before: Callable[[System], Awaitable[None]] | None = None,
    *,
    routes: RouteTable | None = None,
    extra: Callable[[APIRouter], None] | None = None,
) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        system = build(settings, routes=routes)
        system.web.extra = extra
        await upgrade(system.engine)
        if before is not None:
            await before(system)
        config = uvicorn.Config(
            create_app(system, migrate=False),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            # Open requests (long polls) get the part of the grace period that claimed
            # work gets; the rest is for handing claims back (bot/shutdown.py).
            timeout_graceful_shutdown=int(drain_seconds(settings.shutdown_grace_seconds)),
        )
        await _Server(config, on_exit=system.begin_shutdown).serve()

    asyncio.run(main())


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Serve the API (applies pending migrations first)."""
    _serve(_settings(host=host, port=port))


@app.command()
def demo(host: HostOpt = None, port: PortOpt = None) -> None:
    """Serve a self-contained demo: demo routes and drafts, a reviewer and an API key."""
    from bot.demo import add_sink, demo_routes, seed

    settings = _settings(host=host, port=port)

    async def prepare(system: System) -> None:
        key = await system.keys.rotate(name="demo")
        integrator = await system.keys.authenticate(key.api_key)
        assert integrator is not None
        new = await seed(system.service, integrator, system.clock)
        link = await system.web.auth.invite(name="demo", routes=["*"])
        base = settings.base_url
        print(f"\nsignoff demo on {base}  ({new} demo drafts added)", flush=True)
        print(f"Sign in (reviewer 'demo', one-time link): {link}", flush=True)
        print(f"API key (integrator 'demo', new at every start): {key.api_key}", flush=True)
        print(f"Signing secret: {key.signing_secret}\n", flush=True)

    _serve(settings, prepare, routes=demo_routes(settings.base_url), extra=add_sink)


class _Server(uvicorn.Server):
    """Starts the replica's shutdown with the signal: live-update streams end (open
    browser tabs do not hold the server up) and no new work is claimed."""

    def __init__(self, config: uvicorn.Config, *, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        asyncio.get_event_loop().call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)


@users_app.command("create")
def users_create(
    name: str,
    routes: Annotated[str, typer.Option(help="Comma-separated route names, or * for all.")],
    as_json: JsonOpt = False,
) -> None:
    """Create a web reviewer (or update their routes) and print a one-time sign-in link."""
    wanted = [r.strip() for r in routes.split(",") if r.strip()]
    settings = _settings()

    async def work(system: System) -> str:
        unknown = [r for r in wanted if r != "*" and system.routes.get(r) is None]
        if unknown:
            raise ConfigError(
                f"--routes: unknown route {', '.join(unknown)}; "
                f"known routes: {', '.join(system.routes.names())}"
            )
        return await system.web.auth.invite(name=name, routes=wanted)

    url = _with_system(settings, work)
    if as_json:
        print(json.dumps({"name": name.strip(), "sign_in_url": url}))
    else:
        print(f"Sign-in link for {name.strip()} (works once, for 24 hours):\n{url}")


@keys_app.command("create")
def keys_create(name: str, as_json: JsonOpt = False) -> None:
    """Create an API key and signing secret; they are shown only this once."""

    async def work(system: System) -> Any:
        return await system.keys.create(name=name)

    key = _with_system(_settings(), work)
    if as_json:
        print(
            json.dumps(
                {"name": key.name, "api_key": key.api_key, "signing_secret": key.signing_secret}
            )
        )
    else:
        print(
            f"name:           {key.name}\napi key:        {key.api_key}\n"
            f"signing secret: {key.signing_secret}\n(shown once: store them now)"
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""

    async def work(system: System) -> None:
        return None

    _with_system(_settings(), work)
    print("database is up to date")


@app.command()
def submit(
    file: Annotated[str, typer.Argument(help="JSON file with the item, or - for stdin.")] = "-",
    integrator: Annotated[
        str, typer.Option("--as", help="Submit as this key's integrator.")
    ] = "cli",
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit an item as the API would (the integrator's key is created if missing)."""
    raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        data = ItemCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise SignoffError(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        ) from None

    async def work(system: System) -> Any:
        from storage import keys as key_store

        async with system.sessions() as session:
            row = await key_store.key_by_name(session, name=integrator)
        if row is None:
            await system.keys.rotate(name=integrator)
            async with system.sessions() as session:
                row = await key_store.key_by_name(session, name=integrator)
        assert row is not None and row.id is not None
        from bot.auth import Integrator

        result = await system.service.submit(
            integrator=Integrator(id=row.id, name=row.name),
            data=data,
            idempotency_key=idempotency_key,
        )
        return result.item

    item = _with_system(_settings(), work)
    if as_json:
        print(item.model_dump_json())
    else:
        print(f"{item.id}  {item.state}  {item.outcome or ''}".rstrip())


@app.command()
def items(
    state: Annotated[str | None, typer.Option(help="pending, approved, rejected, expired")] = None,
    route: Annotated[str | None, typer.Option(help="Only this route.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List items, newest first, as a table."""

    async def work(system: System) -> Any:
        return await system.reader.page(integrator_id=None, state=state, route=route, limit=limit)

    page = _with_system(_settings(), work)
    if as_json:
        print(page.model_dump_json())
        return
    rows = [("ID", "ROUTE", "KIND", "STATE", "OUTCOME", "RELEASE", "TITLE")]
    rows += [
        (i.id, i.route, i.kind, i.state, i.outcome or "-", i.release_state, i.title[:50])
        for i in page.items
    ]
    _print_table(rows)


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


@app.command()
def decide(
    item_id: str,
    action: Annotated[str, typer.Argument(help="approve, reject, edit or choose")],
    reviewer: Annotated[str, typer.Option("--as", help="Web reviewer name.")],
    reason: Annotated[str | None, typer.Option(help="Reject reason code.")] = None,
    text: Annotated[str | None, typer.Option(help="Free-text reason.")] = None,
    content: Annotated[str | None, typer.Option(help="Edited content, as JSON.")] = None,
    choice: Annotated[
        str | None, typer.Option(help="With choose: A, B (as the card shows), tie, both_bad.")
    ] = None,
) -> None:
    """Decide an item as a web reviewer would (until the web inbox lands)."""

    async def work(system: System) -> Any:
        if action == "choose":  # a comparison: the one-click path of the cards
            from bot.choices import click

            return await click(
                service=system.service,
                reader=system.reader,
                item_id=item_id,
                verb="choose",
                value=choice or "",
                actor=Actor(surface="web", user_id=reviewer, name=reviewer),
            )
        return await system.service.decide(
            item_id=item_id,
            action=action,
            actor=Actor(surface="web", user_id=reviewer, name=reviewer),
            content=json.loads(content) if content else None,
            reason_code=reason,
            reason_text=text,
        )

    item = _with_system(_settings(), work)
    print(f"{item.id}  {item.state}  {item.outcome or ''}  release {item.release_state}")


@app.command("export")
def export_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="sft, dpo, trl or labels")],
    route: Annotated[str | None, typer.Option(help="Only this route.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Decided at or after this date or ISO 8601 time.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE, not stdout.")
    ] = None,
) -> None:
    """Export training data as JSON Lines (streamed; a progress line on a terminal)."""
    from bot.export import ExportFilter, ExportStats, parse_format, parse_since, write_export

    export_format = parse_format(fmt)
    flt = ExportFilter(route=route, since=parse_since(since, field="--since") if since else None)
    # progress only where a person watches, and not over the rows themselves
    tty = sys.stderr.isatty() and (output is not None or not sys.stdout.isatty())
    shown = [0.0]

    def progress(stats: ExportStats) -> None:
        if tty and time.monotonic() - shown[0] >= 0.2:
            shown[0] = time.monotonic()
            print(f"\r{export_format}: {stats.rows:,} rows", end="", file=sys.stderr, flush=True)

    async def work(system: System) -> ExportStats:
        if output is None:
            return await write_export(
                system.reads,
                fmt=export_format,
                flt=flt,
                out=sys.stdout.buffer,
                on_progress=progress,
            )
        partial = output.with_name(output.name + ".partial")  # a failed run leaves no FILE
        try:
            with partial.open("wb") as out:
                stats = await write_export(
                    system.reads, fmt=export_format, flt=flt, out=out, on_progress=progress
                )
            partial.replace(output)
        except OSError as exc:
            raise ConfigError(f"-o: cannot write {output}: {exc.strerror or exc}") from None
        finally:
            partial.unlink(missing_ok=True)
        return stats

    try:
        stats = _with_system(_settings(), work)
    except BrokenPipeError:  # e.g. `| head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    skipped = f" ({stats.skipped:,} left out: no prompt, or no change)" if stats.skipped else ""
    back = "\r" if tty else ""  # over the progress line
    print(f"{back}{export_format}: {stats.rows:,} rows{skipped}", file=sys.stderr)


@releases_app.command("list")
def releases_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed releases.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Releases (one line per target of a chain), newest first."""

    async def work(system: System) -> Any:
        async with system.sessions() as session:
            return await outbox_store.list_rows(
                session, purpose=RELEASE, state="failed" if failed else None, limit=limit
            )

    rows = _with_system(_settings(), work)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "item": r.item_id,
                        "target": r.target_type,
                        "to": r.url,
                        "state": r.state,
                        "attempts": r.attempts,
                        "error": r.last_error if r.state != "delivered" else None,
                        "receipt": r.receipt,
                    }
                    for r in rows
                ]
            )
        )
        return
    table = [("ITEM", "TARGET", "STATE", "ATTEMPTS", "DETAIL")]
    for r in rows:
        detail = r.receipt if r.state == "delivered" else (r.last_error or "")
        table.append((r.item_id, r.url, r.state, str(r.attempts), (detail or "")[:80]))
    _print_table(table)


@releases_app.command("retry")
def releases_retry(item_id: str) -> None:
    """Queue an item's failed release again (same idempotency keys); `serve` delivers it."""

    async def work(system: System) -> Any:
        return await system.retry.retry(item_id=item_id)

    item = _with_system(_settings(), work)
    print(f"{item.id}  release {item.release_state}")


@app.command()
def sweep(
    once: Annotated[bool, typer.Option("--once", help="Run one sweep and exit.")] = False,
    now: Annotated[
        str | None,
        typer.Option(help="Sweep as if it were this time (ISO 8601 with a UTC offset)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire the escalation steps that are due (nudges, escalations, expiries) once.

    For deployments that run it from system cron (with SIGNOFF_SWEEP_ENABLED=false on
    the servers); safe to run beside serving replicas: every step fires once."""
    if not once:
        raise ConfigError("sweep: `serve` sweeps on its own; use --once for a single sweep")
    at = _aware(now, option="--now") if now else None

    async def work(system: System) -> Any:
        if system.discord is not None:
            await system.discord.login()
        try:
            return await system.sweeper.run_once(now=at)
        finally:
            if system.discord is not None:
                await system.discord.bot.close()

    report = _with_system(_settings(), work)
    if as_json:
        print(json.dumps(dataclasses.asdict(report)))
        return
    print(
        f"nudged {report.nudged}, in digests {report.in_digests} ({report.digests} digests), "
        f"escalated {report.escalated}, expired {report.expired}, kept {report.kept}, "
        f"skipped {report.skipped}, recovered {report.recovered}, failed {report.failed}, "
        f"cards posted late {report.reposted}"
    )


@app.command()
def stats(
    route: Annotated[str | None, typer.Option(help="Only this route.")] = None,
    days: Annotated[int, typer.Option(help="Over the last N days (1 to 366).")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Per reviewer: decisions, approval rate, median time to decide, rubber stamps,
    accuracy on gold items and decisions today."""
    from bot.reviewer_stats import MAX_DAYS, reviewer_stats

    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"--days: must be 1 to {MAX_DAYS}, not {days}")

    async def work(system: System) -> Any:
        if route is not None and system.routes.get(route) is None:
            known = ", ".join(system.routes.names())
            raise ConfigError(f"--route: unknown route {route!r}; known routes: {known}")
        return await reviewer_stats(
            system.sessions, routes=[route] if route else None, now=system.clock.now(), days=days
        )

    report = _with_system(_settings(), work)
    if as_json:
        print(json.dumps(report.as_json()))
    elif report.reviewers:
        _print_table(report.table())
    else:
        print(f"no reviewer decisions in the last {days} days")


def _aware(value: str, *, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{option}: give a UTC offset, e.g. {value}+00:00")
    return parsed.astimezone(UTC)


@app.command()
def calibrate(
    route: Annotated[str, typer.Option(help="The route to calibrate.")],
    target_error: Annotated[
        float, typer.Option(help="Highest acceptable error of automatic decisions, e.g. 0.01.")
    ] = 0.01,
    as_json: JsonOpt = False,
) -> None:
    """Accuracy per confidence band (Wilson 95 %) from human decisions and audits, and
    the auto_approve_at / auto_reject_below that keep the error under the target."""
    from bot.calibration import calibration_report

    async def work(system: System) -> Any:
        found = system.routes.get(route)
        if found is None:
            known = ", ".join(system.routes.names())
            raise ConfigError(f"--route: unknown route {route!r}; known routes: {known}")
        return await calibration_report(
            system.sessions, route=found, target_error=target_error, overrides=system.overrides
        )

    report = _with_system(_settings(), work)
    print(json.dumps(report.as_dict()) if as_json else report.text())


@app.command("manifest")
def manifest_command(
    platform: Annotated[str, typer.Argument(help="slack or discord")],
    url: Annotated[str, typer.Option(help="Where Slack reaches signoff (https://...).")] = (
        "https://signoff.example.com"
    ),
    socket: Annotated[bool, typer.Option("--socket", help="Socket Mode: no public URL.")] = False,
    app_id: Annotated[str | None, typer.Option(help="Discord application id.")] = None,
) -> None:
    """Print the Slack app manifest, or the Discord install URL and manifest."""
    if platform == "discord":
        _discord_manifest(app_id)
        return
    if platform != "slack":
        raise ConfigError(f"manifest: unknown platform {platform!r}; known: slack, discord")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"--url: must be an http(s) URL, got {url!r}")
    try:
        from adapters.slack.manifest import manifest_yaml
    except ImportError as exc:
        raise ConfigError(
            f"Slack support is not installed (pip install 'signoff[slack]'): {exc}"
        ) from None
    print(manifest_yaml(url=url, socket_mode=socket), end="")


def _discord_manifest(app_id: str | None) -> None:
    try:
        from adapters.discord.manifest import install_url, manifest_json
    except ImportError as exc:
        raise ConfigError(
            f"Discord support is not installed (pip install 'signoff[discord]'): {exc}"
        ) from None
    if app_id is None:
        print(manifest_json(), end="")
        return
    if not app_id.isdigit():
        raise ConfigError(f"--app-id: expected the application's numeric id, got {app_id!r}")
    print(install_url(app_id))


def main() -> None:
    try:
        app()
    except (SignoffError, ConfigError) as exc:
        print(f"signoff: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        # One line, not a traceback: the database is down or the URL points nowhere.
        print(
            f"signoff: cannot reach the database ({unavailable_reason(exc)}); "
            "check SIGNOFF_DATABASE_URL and that the database is up",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
