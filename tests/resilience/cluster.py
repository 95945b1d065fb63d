"""A small cluster for fault tests: a private PostgreSQL, several ``signoff serve``
replicas on it, a slow idempotent receiver, and the ways a test reaches the replicas
(Slack clicks signed as Slack signs them, a signed-in web reviewer).

The PostgreSQL cluster is private to the test module (``initdb`` into a temporary
directory, its own port and socket directory): a test may restart it, and three
replicas' connection pools (up to 30 connections each) do not crowd the shared server
that other tests use.

Replicas are the real ``signoff`` command (``bot.cli.main`` with ``serve`` in argv, as
the console script runs it), each in its own process, forked from a fork server that
has imported signoff once: a process starts in a fraction of a second instead of
paying two seconds of imports, which matters for twenty kill-and-restart rounds on two
cores. ``kill -9`` and SIGTERM reach them as they would any server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

import bot.cli
from tests.conftest import IN_CI
from tests.process import ROOT, free_port, signoff_env

SLACK_TOKEN = "xoxb-resilience"
SLACK_SECRET = "resilience-signing-secret"
FIXTURES = ROOT / "tests" / "fixtures" / "slack"
T = TypeVar("T")


# -- PostgreSQL of our own ---------------------------------------------------------------


def pg_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (``SIGNOFF_TEST_PG_BIN``, else the
    newest ``/usr/lib/postgresql/*/bin``, else ``PATH``); fails in CI, skips elsewhere."""
    wanted = os.environ.get("SIGNOFF_TEST_PG_BIN")
    if wanted:
        candidates = [Path(wanted)]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        found = shutil.which("initdb")
        if found:
            candidates.append(Path(found).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    message = "PostgreSQL's server programs (initdb, pg_ctl) are not installed"
    if IN_CI:
        pytest.fail(message + " (CI must run the fault suite)", pytrace=False)
    pytest.skip(message + " (apt-get install postgresql; skipped outside CI)")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with trust authentication."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="signoff-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        # PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr}{done.stdout}")

    def init(self) -> PrivatePostgres:
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            *("-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"),
        )
        return self

    def start(self) -> None:
        # fsync off: nothing here survives a power loss, and the tests write a lot.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL signoff takes."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        """A fresh database; its SQLAlchemy URL."""
        conn = await asyncpg.connect(self.dsn(), timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of ``sql`` straight from the database (what the replicas left there)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float, what: str, every: float = 0.2
) -> T:
    """Poll ``check`` (another process's doing) until it gives something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(every)  # polling other processes, not a timer under test


# -- processes of the signoff command ----------------------------------------------------

_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload([__name__])  # this module imports bot.cli: signoff, loaded


def _signoff(argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    """``signoff ARGV`` in this (forked) process: the console script's entry point with
    exactly ``env`` as its environment and its output in files."""
    os.setsid()
    os.chdir(ROOT)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["signoff", *argv]
    bot.cli.main()


def start_signoff(
    argv: list[str], *, env: dict[str, str], stdout: Path, stderr: Path | None = None
) -> multiprocessing.process.BaseProcess:
    process = _FORKS.Process(
        target=_signoff, args=(argv, env, str(stdout), str(stderr or stdout)), daemon=False
    )
    process.start()
    return process


def run_signoff(argv: list[str], *, env: dict[str, str], workdir: Path) -> str:
    """Run ``signoff ARGV`` to the end; its stdout (its stderr in the error)."""
    name = secrets.token_hex(4)
    out, err = workdir / f"cli-{name}.out", workdir / f"cli-{name}.err"
    process = start_signoff(argv, env=env, stdout=out, stderr=err)
    process.join(120)
    if process.exitcode != 0:
        process.kill()
        raise AssertionError(
            f"signoff {' '.join(argv)}: exit {process.exitcode}: {err.read_text()}"
        )
    return out.read_text()


# -- replicas --------------------------------------------------------------------------


class Replica:
    """One ``signoff serve`` process with its own port; output goes to a log file."""

    def __init__(self, *, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "SIGNOFF_PORT": str(self.port)}
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.ready_at: float | None = None

    def spawn(self) -> Replica:
        self.proc = start_signoff(["serve"], env=self.env, stdout=self.log)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far (Linux ``/proc``; 0 when unknown)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    @property
    def ready(self) -> bool:
        return self.running and self.ready_at is not None

    async def wait_ready(self, *, within: float = 60) -> Replica:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
                try:
                    if (await http.get(f"{self.base}/healthz")).status_code == 200:
                        self.ready_at = time.monotonic()
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)  # polling the process for readiness
        raise RuntimeError(f"{self.name} did not listen within {within}s:\n{self.tail()}")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs, connections drop mid-request."""
        self.ready_at = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()

    def terminate(self) -> None:
        """SIGTERM, as a service manager stops it (see :meth:`stop`)."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()

    def stop(self, *, within: float = 20) -> None:
        """SIGTERM, then wait; SIGKILL after ``within`` seconds."""
        self.ready_at = None
        if self.proc is None:
            return
        self.terminate()
        self.proc.join(within)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()

    async def health(self, http: httpx.AsyncClient) -> dict[str, Any] | None:
        try:
            answer = await http.get(f"{self.base}/healthz", timeout=1)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
        return body or None

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Cluster:
    """Replicas of one signoff on one database, and an integrator's API key."""

    env: dict[str, str]
    workdir: Path
    dsn: str  # the database, for asyncpg
    api_key: str
    replicas: list[Replica] = field(default_factory=list)
    _count: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def spawn(self) -> Replica:
        """Start one more replica (not waiting for it)."""
        self._count += 1
        replica = Replica(name=f"replica{self._count}", env=self.env, log_dir=self.workdir)
        self.replicas.append(replica.spawn())
        return replica

    def ready(self) -> list[Replica]:
        return [r for r in self.replicas if r.ready]

    def pick(self) -> Replica:
        """A random replica that is up."""
        return random.choice(self.ready())

    def stop(self) -> None:
        """Stop every replica, all at once (each has its own grace period)."""
        for replica in self.replicas:
            replica.terminate()
        deadline = time.monotonic() + 20
        for replica in self.replicas:
            replica.stop(within=max(0.1, deadline - time.monotonic()))

    def logs(self) -> str:
        return "\n".join(f"--- {r.name}\n{r.tail(2000)}" for r in self.replicas)

    async def cli(self, *args: str) -> str:
        """Run ``signoff ARGS`` on the cluster's database and settings; its stdout."""
        return await asyncio.to_thread(run_signoff, list(args), env=self.env, workdir=self.workdir)


async def start_cluster(
    *,
    workdir: Path,
    db_url: str,
    routes: dict[str, Any],
    size: int,
    settings: dict[str, str] | None = None,
) -> Cluster:
    """Write the route file, create an API key (which applies the migrations once, before
    any replica starts), then start ``size`` replicas and wait until all listen."""
    config = workdir / "signoff.yaml"
    config.write_text(json.dumps({"routes": routes}))
    env = signoff_env(
        SIGNOFF_DATABASE_URL=db_url,
        SIGNOFF_CONFIG=str(config),
        SIGNOFF_LOG_LEVEL="warning",  # no access log: thousands of requests
        SIGNOFF_SHUTDOWN_GRACE_SECONDS="2",  # the tests stop replicas a few times
        **(settings or {}),
    )
    key = await asyncio.to_thread(
        run_signoff, ["keys", "create", "agent", "--json"], env=env, workdir=workdir
    )
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    cluster = Cluster(env=env, workdir=workdir, dsn=dsn, api_key=json.loads(key)["api_key"])
    started = [cluster.spawn() for _ in range(size)]
    try:
        await asyncio.gather(*(r.wait_ready() for r in started))
    except BaseException:
        cluster.stop()
        raise
    return cluster


async def bounded(limit: int, jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``jobs`` with at most ``limit`` at a time; their results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


# -- the ways in -------------------------------------------------------------------------


def block_actions(*, item_id: str, verb: str, user: str, channel: str, ts: str) -> dict[str, Any]:
    """A real block_actions payload (the shared fixture) for a click on a card."""
    payload: dict[str, Any] = json.loads((FIXTURES / "block_actions_button_click.json").read_text())
    payload["user"] = {"id": user, "username": user.lower(), "name": user.lower()}
    payload["trigger_id"] = f"{random.randrange(10**12)}.{random.randrange(10**12)}.resilience"
    payload["channel"] = {"id": channel}
    payload["container"].update(channel_id=channel, message_ts=ts)
    payload["message"]["ts"] = ts
    payload["actions"] = [
        {
            "action_id": f"signoff:{verb}:{item_id}",
            "block_id": f"signoff-actions:{item_id}",
            "text": {"type": "plain_text", "text": verb},
            "value": item_id,
            "type": "button",
            "action_ts": ts,
        }
    ]
    return payload


async def slack_click(
    http: httpx.AsyncClient, base: str, payload: dict[str, Any]
) -> httpx.Response:
    """POST an interaction to a replica's ``/slack/events`` as Slack does: form-encoded
    and signed with the signing secret."""
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=timestamp, body=body)
    return await http.post(
        f"{base}/slack/events",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
        },
    )


@dataclass(frozen=True)
class WebReviewer:
    """A reviewer signed in to the web console: the session cookie works on every
    replica (sessions live in the database)."""

    name: str
    cookie: str
    csrf: str

    async def decide(
        self, http: httpx.AsyncClient, base: str, item_id: str, action: str = "approve"
    ) -> httpx.Response:
        """The inbox form's POST; 303 means decided."""
        return await http.post(
            f"{base}/items/{item_id}/decide",
            data={"action": action, "csrf": self.csrf},
            headers={"Cookie": self.cookie},
        )


async def sign_in(cluster: Cluster, http: httpx.AsyncClient, name: str) -> WebReviewer:
    """Invite ``name`` with ``signoff users create`` and redeem the link on a replica."""
    out = await cluster.cli("users", "create", name, "--routes", "*", "--json")
    path = urlsplit(json.loads(out)["sign_in_url"]).path
    base = cluster.pick().base
    answer = await http.post(f"{base}{path}")
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"].split(";", 1)[0]
    page = await http.get(f"{base}/", headers={"Cookie": cookie})
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return WebReviewer(name=name, cookie=cookie, csrf=match.group(1))


# -- the receiver ------------------------------------------------------------------------


@dataclass
class IdempotentReceiver:
    """A release target that honours ``Idempotency-Key``: the first request with a key
    has the effect, later ones with the same key are answered the same and counted as
    duplicates. Each request takes ``delay`` seconds (a range), so deliveries are in
    flight when a replica dies; the effect lands after the delay even if the sender is
    gone by then (a crash between delivering and recording)."""

    delay: tuple[float, float] = (0.0, 0.0)
    requests: Counter[str] = field(default_factory=Counter)  # by key
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> body
    url: str = ""
    _peers: dict[object, int] = field(default_factory=dict)  # requests in flight: client port
    _runner: web.AppRunner | None = None

    async def start(self) -> IdempotentReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get("Idempotency-Key", "")
        self.requests[key] += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        token = object()
        self._peers[token] = int(peer[1]) if peer else 0
        try:
            await asyncio.sleep(random.uniform(*self.delay))  # a slow target at work
        finally:
            del self._peers[token]
        if key not in self.effects:
            self.effects[key] = json.loads(body)
        return web.json_response({"ok": True, "duplicate": self.requests[key] > 1})

    def in_flight_ports(self) -> set[int]:
        """The client ports of the requests being handled now."""
        return set(self._peers.values())

    @property
    def duplicates(self) -> int:
        """Requests beyond the first per key: at-least-once delivery at work."""
        return sum(n - 1 for n in self.requests.values())

    def effects_per_item(self) -> Counter[str]:
        """How many effects each item had (one per key, and an item has one key)."""
        return Counter(str(body["item"]["id"]) for body in self.effects.values())


def socket_owner(local_port: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` owns the TCP socket bound to ``local_port`` (Linux ``/proc``):
    tells which replica a request in flight at the receiver comes from."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None
