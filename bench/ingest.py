"""Ingest throughput of a real signoff server, against a hello-world route and raw inserts.

Run from the repository root: ``make bench`` runs ``.venv/bin/python bench/ingest.py
--postgres $(BENCH_PG)`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
without ``--postgres`` only SQLite is measured. About 4 minutes for both on 2 cores.

Method
------
* **Server.** This script starts itself again in a subprocess (``--serve``), in a fresh
  temporary directory holding a route file with two routes that post to the built-in
  web surface: ``review``, where every item waits for a person (pending), and
  ``moderation``, whose thresholds approve every item of the benchmark (confidence
  0.95 ≥ ``auto_approve_at`` 0.9) by policy, so each answer carries the policy's
  decision. ``SIGNOFF_DATABASE_URL`` points at a new SQLite file in that directory, or
  at a new PostgreSQL database made for the run (``--postgres ADMIN_DSN``; dropped
  after). The child builds the real stack (``bot.app.build(load_settings())`` and
  ``bot.app.create_app(system)``), applies the migrations, creates the API key ``bench``
  and adds a bare endpoint, ``GET /hello`` returning ``{"hello": "world"}``, to the same
  FastAPI app, plus ``GET /bench/stats`` (below). It serves with uvicorn (log level
  warning, access log off) on a socket it binds on 127.0.0.1 with a free port and hands
  the port and the key to the parent as one JSON line. It stops on SIGTERM, or when its
  stdin closes (so it also goes away if the parent dies).
* **Load.** Closed-loop aiohttp clients, one keep-alive connection each, in
  ``--procs`` load-generator processes: each sends its next request as soon as the
  previous one is answered. Phases against the same server: ``GET /hello``, ``POST
  /v1/items`` on ``review`` and on ``moderation`` (``--concurrency`` clients, default
  32, a 225-byte email item, 201 expected), and ``POST /v1/items:batch`` with 1,000 such
  items per call on each route (``--batch-clients``, default 8). Each phase has a
  warm-up (``--warmup``) and then a measured window (``--seconds``). The rate counts
  each answer by the share of its time (send to fully read answer) that fell inside the
  window, so a batch call of several seconds that straddles an edge counts in part
  rather than all or nothing; latencies are those of the answers completed inside the
  window. Errors (an unexpected status or body, or a failed request) are counted over
  the whole phase.
* **Rounds.** The VM is shared and noisy, so phases run ``--rounds`` times, interleaved
  (hello, review, moderation, batch review, batch moderation, hello, ...). A phase's
  rate is the median over rounds (the per-round rates are shown too); p50 and p99 are
  taken over the latencies of all its rounds' windows; errors are summed. The ratios to
  hello are ratios of medians.
* **Raw inserts.** The baseline for what the database and driver alone cost: the same
  item rows (the columns a pending ``review`` item gets, each with a new id) inserted
  from this process into a second fresh database through the same engine setup
  (``storage.db.make_engine``: aiosqlite with WAL, ``synchronous=NORMAL`` and ``BEGIN
  IMMEDIATE``, or asyncpg) with SQLAlchemy Core ``insert()``, by one task: one row per
  transaction (a commit per row: what single-item ingest would cost without group
  commit), and 1,000 rows per transaction as one ``executemany`` (what a batch costs),
  each for 3 s.
* **Server diagnostics.** ``GET /bench/stats`` answers (and forgets) what the server saw
  since the last call, each event stamped with ``time.monotonic()``: garbage-collector
  pauses per generation (``gc.callbacks``), the event loop's lag (a task that asks to
  sleep 5 ms and records how late it wakes), and the group writer's commits (their
  duration and how many requests and rows each carried; the bench wraps
  ``GroupWriter._commit``). The parent reads it after each phase and keeps the events
  of the measured window.
* **Profile.** With py-spy installed (the ``bench`` extra), one more single-item phase
  on ``review`` runs under ``py-spy record --nonblocking`` (sampling from outside, the
  server not paused) for ``--profile-seconds``; the samples are summed by package and by
  function (self time: the innermost frame) and the top ones reported.
* **CPU.** On 2 cores the load generator competes with the server, so each phase also
  reports how busy the server (all threads) and the load generator were during its
  windows, read from ``/proc``. A round in which other processes used more than
  ``NOISE`` cores is named in a warning.
* **Check.** After the server has stopped, the items in the database are counted and
  compared with the items the clients were answered 201 for.

Every figure goes to stdout and to the ``## Ingest (bench/ingest.py)`` section of
``BENCHMARKS.md`` (that section is replaced; others are kept), with the targets: single
item ingest ≥ 25% of the hello-world rate and p99 < 50 ms at 32 clients (SQLite); batch
ingest ≥ 2,800 items/s (10,000,000 an hour), on SQLite and PostgreSQL. The exit status
is non-zero if any request failed or the stored items do not match the answers;
missing a target alone does not fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import importlib.util
import json
import math
import multiprocessing as mp
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import machine_busy, percentile, proc_cpu, write_section

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Ingest (bench/ingest.py)"
RATIO_TARGET = 0.25  # single-item ingest / hello, SQLite
P99_TARGET_MS = 50.0  # single-item ingest at 32 clients, SQLite
BATCH_TARGET = 2800.0  # items/s: 10,000,000 an hour, SQLite and PostgreSQL
BATCH = 1000  # items per batch call
HELLO_BODY = b'{"hello":"world"}'
ROUTES_YAML = """\
routes:
  review:        # every item waits for a person
    surfaces: [{type: web}]
  moderation:    # every item of the benchmark (confidence 0.95) is approved by policy
    surfaces: [{type: web}]
    thresholds: {auto_approve_at: 0.9, auto_reject_below: 0.2}
"""
CONTENT = {
    "to": ["jane@example.com"],
    "subject": "Your refund",
    "body": "Hi Jane, your refund of 42.00 EUR is on its way. Best, the support team",
}
ITEM: dict[str, Any] = {
    "route": "review",
    "kind": "email",
    "title": "Refund",
    "content": CONTENT,
    "confidence": 0.5,
}
AUTO_ITEM: dict[str, Any] = {**ITEM, "route": "moderation", "confidence": 0.95}
SERVER_START_TIMEOUT = 60.0
MAX_ERROR_SAMPLES = 5
NOISE = 0.25  # cores used by other processes above which a round is flagged as disturbed
LAG_TICK = 0.005  # the loop-lag probe's sleep
PHASES = ("hello", "review", "auto", "batch", "batch-auto")
RAW_SECONDS = 3.0  # per raw-insert mode


# -- server (child process) ---------------------------------------------------------------


class ServerStats:
    """What the server saw, each event stamped with ``time.monotonic()`` (the same clock
    in every process of the machine), so the parent can keep a window's worth."""

    def __init__(self) -> None:
        self._gc_started = 0.0
        self.reset()

    def reset(self) -> None:
        self.gc: list[tuple[float, int, float]] = []  # at, generation, pause ms
        self.lags: list[tuple[float, float]] = []  # at, ms late
        self.commits: list[tuple[float, float, int, int]] = []  # at end, ms, requests, rows

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.monotonic()
        else:
            now = time.monotonic()
            self.gc.append((now, info["generation"], (now - self._gc_started) * 1000))

    async def probe_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK)
            now = time.monotonic()
            self.lags.append((now, (now - before - LAG_TICK) * 1000))

    def read(self) -> dict[str, Any]:
        """Every event since the last read, and start again."""
        out = {"gc": self.gc, "lags": self.lags, "commits": self.commits}
        self.reset()
        return out


def window_stats(events: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """The events of ``events`` (from ``ServerStats.read``) inside [start, end)."""
    return {
        "seconds": end - start,
        **{name: [e for e in rows if start <= e[0] < end] for name, rows in events.items()},
    }


def serve() -> None:
    """Build the real app, add ``GET /hello`` and ``GET /bench/stats``, create a key,
    print port and key, serve."""
    import gc
    import logging

    import uvicorn

    from bot.app import build, create_app
    from bot.settings import load_settings
    from storage.migrate import upgrade

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stats = ServerStats()

    async def main() -> None:
        settings = load_settings()
        system = build(settings)
        await upgrade(system.engine)
        key = await system.keys.create(name="bench")
        app = create_app(system, migrate=False)
        # (``_writer``: the same script also measures older checkouts, for comparisons)
        writer = getattr(system.service, "writer", None) or system.service._writer
        commit = writer._commit  # measured, not changed

        async def timed_commit(groups: list[Any]) -> None:
            started = time.monotonic()
            try:
                await commit(groups)
            finally:
                now, rows = time.monotonic(), sum(len(g) for g in groups)
                stats.commits.append((now, (now - started) * 1000, len(groups), rows))

        writer._commit = timed_commit  # type: ignore[method-assign]

        @app.get("/hello", include_in_schema=False)
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

        @app.get("/bench/stats", include_in_schema=False)
        async def bench_stats() -> dict[str, Any]:
            return stats.read()

        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listening socket says TCP; without it, keep-alive answers stall on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        sock.listen(config.backlog)  # from here on, connections wait until uvicorn accepts
        server = uvicorn.Server(config)
        loop = asyncio.get_running_loop()

        def stop_when_stdin_closes() -> None:
            while os.read(0, 4096):  # raw reads: no buffer lock held at interpreter exit
                pass
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)

        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
        gc.callbacks.append(stats.on_gc)
        if os.environ.get("BENCH_GC_THRESHOLD"):  # --gc-threshold: for experiments
            gc.set_threshold(*(int(x) for x in os.environ["BENCH_GC_THRESHOLD"].split(",")))
        probe = asyncio.create_task(stats.probe_lag())
        ready = {
            "port": sock.getsockname()[1],
            "api_key": key.api_key,
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        }
        print(json.dumps(ready), flush=True)
        await server.serve(sockets=[sock])
        probe.cancel()

    asyncio.run(main())


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    api_key: str
    http: str
    loop: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any] | None:
        """The server's diagnostics since the last call (None if it did not answer)."""
        try:
            with urllib.request.urlopen(f"{self.base}/bench/stats", timeout=10) as answer:
                return dict(json.loads(answer.read()))
        except OSError:
            return None


@contextlib.contextmanager
def running_server(
    workdir: Path, db_url: str, *, gc_threshold: str | None = None
) -> Iterator[Server]:
    """The server subprocess, terminated when the block ends, however it ends."""
    (workdir / "signoff.yaml").write_text(ROUTES_YAML, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env.update(
        SIGNOFF_DATABASE_URL=db_url,
        SIGNOFF_LOG_LEVEL="warning",
        SIGNOFF_CONFIG=str(workdir / "signoff.yaml"),
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if gc_threshold:
        env["BENCH_GC_THRESHOLD"] = gc_threshold
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        cwd=workdir,  # no .env here: settings from the environment only
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        line = _read_line(process, SERVER_START_TIMEOUT)
        if not line:
            process.wait(timeout=SERVER_START_TIMEOUT)
            raise RuntimeError(
                f"the server exited with {process.returncode} before it was ready:\n"
                + (workdir / "server.log").read_text(errors="replace")[-4000:]
            )
        ready = json.loads(line)
        yield Server(process, ready["port"], ready["api_key"], ready["http"], ready["loop"])
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        log.close()


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line of ``process``; RuntimeError if none comes within ``timeout``."""
    stdout = process.stdout
    assert stdout is not None
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise RuntimeError(f"the server did not report ready within {timeout:.0f} s")
    return out[0].decode().strip()


# -- load generator (worker processes) ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Phase:
    key: str  # short name, for the code
    endpoint: str  # "POST /v1/items"
    route: str | None
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int
    expect_body: bytes | None = None  # the exact answer body, when it is fixed
    clients: int
    items_per_answer: int = 0  # items stored per expected answer (0: none)

    @property
    def method(self) -> str:
        return self.endpoint.split(" ")[0]

    @property
    def name(self) -> str:
        """As the tables show it."""
        return f"`{self.endpoint}`" + (f" {self.route}" if self.route else "")


@dataclass
class WorkerResult:
    latencies_ms: list[float] = field(default_factory=list)  # of requests done in the window
    busy: float = 0.0  # answers' shares inside the window (each: overlap / its duration)
    ok_total: int = 0  # expected answers over the whole phase, warm-up included
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # this process's CPU time during the window


def load_worker(
    phase: Phase,
    clients: int,
    warmup: float,
    seconds: float,
    ready: EventType,
    go: EventType,
    start_at: Any,  # a shared multiprocessing double: the monotonic time to start at
    results: Connection,
) -> None:
    """One load-generator process: ``clients`` closed-loop clients, results to the pipe."""
    ready.set()
    go.wait()
    result = asyncio.run(_drive(phase, clients, start_at.value, warmup, seconds))
    results.send(result)
    results.close()


async def _drive(
    phase: Phase, clients: int, start: float, warmup: float, seconds: float
) -> WorkerResult:
    window_start, window_end = start + warmup, start + warmup + seconds
    result = WorkerResult()

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while (sent := time.monotonic()) < window_end:
                try:
                    async with session.request(
                        phase.method, phase.url, data=phase.body, headers=phase.headers
                    ) as response:
                        body = await response.read()
                        status = response.status
                except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
                    _error(result, f"{type(exc).__name__}: {exc}")
                    continue
                done = time.monotonic()
                if status != phase.status or (
                    phase.expect_body is not None and body != phase.expect_body
                ):
                    _error(result, f"HTTP {status}: {body[:300].decode(errors='replace')}")
                    continue
                result.ok_total += 1
                if window_start <= done < window_end:
                    result.latencies_ms.append((done - sent) * 1000)
                # A 1,000-item call can take seconds: credit each answer with the share of
                # its time inside the window, so a window holds no whole-call quantum.
                inside = min(done, window_end) - max(sent, window_start)
                if inside > 0:
                    result.busy += inside / (done - sent)

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        before = time.process_time()
        await asyncio.sleep(max(0.0, window_end - time.monotonic()))
        result.cpu_seconds = time.process_time() - before

    await asyncio.sleep(max(0.0, start - time.monotonic()))
    await asyncio.gather(cpu_window(), *(client() for _ in range(clients)))
    return result


def _error(result: WorkerResult, message: str) -> None:
    result.errors += 1
    if len(result.error_samples) < MAX_ERROR_SAMPLES:
        result.error_samples.append(message)


# -- one phase ----------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """One round of one phase."""

    rate: float  # answers/s in the window (each answer counted by its share inside it)
    latencies_ms: list[float]  # sorted, of the requests done in the measured window
    ok_total: int
    errors: int
    error_samples: list[str]
    server_cores: float | None
    loadgen_cores: float
    loadgen_max_cores: float  # the busiest single load-generator process
    machine_cores: float | None  # all of the machine's CPUs busy, in cores
    server_stats: dict[str, Any] | None  # /bench/stats over the window

    @property
    def other_cores(self) -> float | None:
        """CPU used by neither the server nor the load generator: noise from elsewhere."""
        if self.machine_cores is None or self.server_cores is None:
            return None
        return max(0.0, self.machine_cores - self.server_cores - self.loadgen_cores)


def run_phase(
    phase: Phase,
    server: Server,
    *,
    procs: int,
    warmup: float,
    seconds: float,
    during: Callable[[], None] | None = None,
) -> PhaseResult:
    """Drive ``phase`` from up to ``procs`` processes and sample the server meanwhile;
    ``during`` is started (in a thread) as the measured window opens."""
    procs = min(procs, phase.clients)
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    shares = [
        phase.clients // procs + (1 if i < phase.clients % procs else 0) for i in range(procs)
    ]
    workers: list[tuple[Any, Connection, EventType]] = []
    pid = server.process.pid
    try:
        for clients in shares:
            receiver, sender = ctx.Pipe(duplex=False)
            ready = ctx.Event()
            process = ctx.Process(
                target=load_worker,
                args=(phase, clients, warmup, seconds, ready, go, start_at, sender),
                daemon=True,
            )
            process.start()
            sender.close()
            workers.append((process, receiver, ready))
        for process, _, ready in workers:
            if not ready.wait(SERVER_START_TIMEOUT):
                raise RuntimeError(f"load generator {process.pid} did not start")
        start = time.monotonic() + 0.2
        start_at.value = start
        go.set()
        # Sample the server and the machine at the edges of the measured window.
        server.stats()  # drops what came before this phase
        time.sleep(max(0.0, start + warmup - time.monotonic()))
        server_before, machine_before = proc_cpu(pid), machine_busy()
        helper = threading.Thread(target=during, daemon=True) if during else None
        if helper is not None:
            helper.start()
        time.sleep(max(0.0, start + warmup + seconds - time.monotonic()))
        server_after, machine_after = proc_cpu(pid), machine_busy()
        results: list[WorkerResult] = []
        for process, receiver, _ in workers:
            if not receiver.poll(warmup + seconds + 180):
                raise RuntimeError(f"load generator {process.pid} sent no result")
            results.append(receiver.recv())
        events = server.stats()  # read after the load, so the window is not disturbed
        stats = window_stats(events, start + warmup, start + warmup + seconds) if events else None
        if helper is not None:
            helper.join()
    except BaseException:
        for process, _, _ in workers:
            process.terminate()  # cut the phase short: an error, Ctrl-C or SIGTERM
        raise
    finally:
        for process, receiver, _ in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
            receiver.close()

    latencies = sorted(x for r in results for x in r.latencies_ms)
    return PhaseResult(
        rate=sum(r.busy for r in results) / seconds,
        latencies_ms=latencies,
        ok_total=sum(r.ok_total for r in results),
        errors=sum(r.errors for r in results),
        error_samples=[s for r in results for s in r.error_samples][:MAX_ERROR_SAMPLES],
        server_cores=_delta(server_before, server_after, seconds),
        loadgen_cores=sum(r.cpu_seconds for r in results) / seconds,
        loadgen_max_cores=max(r.cpu_seconds for r in results) / seconds,
        machine_cores=_delta(machine_before, machine_after, seconds),
        server_stats=stats,
    )


def _delta(before: float | None, after: float | None, seconds: float) -> float | None:
    return None if before is None or after is None else (after - before) / seconds


# -- all rounds of one phase --------------------------------------------------------------


@dataclass
class PhaseRuns:
    phase: Phase
    rounds: list[PhaseResult] = field(default_factory=list)
    extra_stored: int = 0  # items stored outside the rounds (the profiled run)

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.rounds]

    @property
    def rate(self) -> float:
        """Median answers/s over rounds."""
        return statistics.median(self.rates)

    @property
    def item_rate(self) -> float:
        return self.rate * self.phase.items_per_answer

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(x for r in self.rounds for x in r.latencies_ms)

    def p(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct)

    @property
    def stored(self) -> int:
        answers = sum(r.ok_total for r in self.rounds)
        return answers * self.phase.items_per_answer + self.extra_stored

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    @property
    def error_samples(self) -> list[str]:
        return [s for r in self.rounds for s in r.error_samples][:MAX_ERROR_SAMPLES]

    def cores(self, name: str) -> float | None:
        """Mean over rounds of a CPU figure (None when one round lacks it)."""
        values = [getattr(r, name) for r in self.rounds]
        if not values or any(v is None for v in values):
            return None
        return statistics.fmean(values)

    @property
    def disturbed_rounds(self) -> list[int]:
        """1-based numbers of the rounds where other processes used over ``NOISE`` cores."""
        return [i for i, r in enumerate(self.rounds, 1) if (r.other_cores or 0) > NOISE]

    def diagnostics(self) -> dict[str, float] | None:
        """Server diagnostics over all rounds' windows; NaN where nothing was seen."""
        stats = [r.server_stats for r in self.rounds if r.server_stats]
        if not stats:
            return None
        seconds = sum(s["seconds"] for s in stats)
        gcs = [g for s in stats for g in s["gc"]]
        pauses = sorted(g[2] for g in gcs)
        lags = sorted(x[1] for s in stats for x in s["lags"])
        commits = [c for s in stats for c in s["commits"]]
        durations = sorted(c[1] for c in commits)
        n = len(commits)
        return {
            "gc_per_s": len(pauses) / seconds,
            "gc_ms_per_s": sum(pauses) / seconds,
            "gc_max_ms": pauses[-1] if pauses else math.nan,
            "gc2": sum(1 for g in gcs if g[1] == 2),
            "lag_p99_ms": percentile(lags, 99),
            "lag_max_ms": lags[-1] if lags else math.nan,
            "commits_per_s": n / seconds,
            "requests_per_commit": sum(c[2] for c in commits) / n if n else math.nan,
            "rows_per_commit": sum(c[3] for c in commits) / n if n else math.nan,
            "commit_p50_ms": percentile(durations, 50),
            "commit_p99_ms": percentile(durations, 99),
            "commit_max_ms": durations[-1] if durations else math.nan,
        }


# -- raw inserts: the database and driver alone -------------------------------------------


@dataclass
class RawResult:
    name: str
    rows: int
    seconds: float
    latencies_ms: list[float]  # per transaction, sorted

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def raw_inserts(url: str, *, seconds: float) -> list[RawResult]:
    """Insert pending ``review`` item rows straight through SQLAlchemy Core."""
    from sqlalchemy import inspect as sa_inspect

    from bot.auth import KeyRing
    from bot.clock import SystemClock
    from bot.ids import new_item_id
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade
    from storage.models import Item

    engine = make_engine(url)
    try:
        await upgrade(engine)
        keys = KeyRing(sessions=session_factory(engine), clock=SystemClock())
        found = await keys.authenticate((await keys.create(name="raw")).api_key)
        assert found is not None
        now = dt.datetime.now(dt.UTC)
        template = Item(  # the columns submit sets for a pending item of ``review``
            id="",
            integrator_id=found.id,
            route="review",
            kind="email",
            title=ITEM["title"],
            content=CONTENT,
            confidence=ITEM["confidence"],
            meta={},
            state="pending",
            release_state="none",
            created_at=now,
            updated_at=now,
        )
        table = Item.__table__  # type: ignore[attr-defined]
        values = {
            a.columns[0].name: getattr(template, a.key) for a in sa_inspect(Item).column_attrs
        }
        values.pop("id")

        def row() -> dict[str, Any]:
            return {**values, "id": new_item_id(now)}

        async def one_per_commit() -> int:
            async with engine.begin() as connection:
                await connection.execute(table.insert(), row())
            return 1

        async def executemany() -> int:
            async with engine.begin() as connection:
                await connection.execute(table.insert(), [row() for _ in range(BATCH)])
            return BATCH

        out = []
        for name, step in (
            ("one row per transaction", one_per_commit),
            (f"{BATCH:,} rows per transaction (executemany)", executemany),
        ):
            for _ in range(3):  # warm-up: connections, statement caches
                await step()
            rows, latencies = 0, []
            started = time.perf_counter()
            while (now_s := time.perf_counter()) - started < seconds:
                rows += await step()
                latencies.append((time.perf_counter() - now_s) * 1000)
            out.append(RawResult(name, rows, time.perf_counter() - started, sorted(latencies)))
        return out
    finally:
        await engine.dispose()


# -- profile ------------------------------------------------------------------------------


@dataclass
class Profile:
    samples: int
    seconds: float
    rate_hz: int
    by_package: list[tuple[str, int]]  # self samples per package
    by_function: list[tuple[str, int]]  # self samples per function
    inclusive: list[tuple[str, int]]  # signoff's own functions, inclusive samples


def py_spy() -> str | None:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    return found


def record_profile(pid: int, *, seconds: float, out: Path, rate_hz: int = 250) -> None:
    """Sample ``pid`` with py-spy for ``seconds`` into ``out`` (collapsed stacks)."""
    exe = py_spy()
    assert exe is not None
    subprocess.run(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate_hz),
            "--duration",
            str(max(1, round(seconds))),
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )


# Innermost frames that are waits, not work: py-spy counts a thread blocked in these as
# busy (aiosqlite's worker waiting for its next call; the event loop in epoll).
_WAITS = ("_connection_worker_thread (aiosqlite/core.py:59)", "EpollSelector.select (")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")


def summarise_profile(path: Path, *, seconds: float, rate_hz: int) -> Profile:
    """Self samples by package and function, and signoff's functions inclusive."""
    by_package: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = stack.split(";")
        if raw[-1].startswith(_WAITS):
            continue
        total += count
        frames = [_frame(f) for f in raw]
        leaf_func, leaf_pkg = frames[-1]
        by_package[leaf_pkg] += count
        by_function[f"{leaf_func} ({leaf_pkg})"] += count
        for func in {f for f, pkg in frames if pkg == "signoff" and not f.startswith("ingest.")}:
            inclusive[func] += count
    return Profile(
        samples=total,
        seconds=seconds,
        rate_hz=rate_hz,
        by_package=by_package.most_common(12),
        by_function=by_function.most_common(15),
        inclusive=inclusive.most_common(15),
    )


def _frame(text: str) -> tuple[str, str]:
    """(module.function, package) of one py-spy frame, ``func (path/to/module.py:line)``;
    py-spy gives the path relative to the ``sys.path`` entry it was found under."""
    match = _FRAME.match(text)
    if match is None:
        return text, "?"
    func, path = match["func"], match["file"].replace("\\", "/")
    for marker in ("site-packages/", f"{ROOT.as_posix()}/"):
        path = path.split(marker, 1)[-1]
    path = re.split(r"/lib/python3\.\d+/", path, maxsplit=1)[-1]
    module = path.removesuffix(".py").replace("/", ".")
    top = module.split(".", 1)[0]
    if top in ("bot", "storage", "adapters", "bench", "ingest"):
        package = "signoff"
    elif top in sys.stdlib_module_names:
        package = f"{top} (stdlib)"
    else:
        package = top
    return f"{module}.{func}", package


# -- databases ----------------------------------------------------------------------------


@dataclass
class Database:
    label: str  # "SQLite" or "PostgreSQL"
    url: str  # the server's
    raw_url: str  # the raw inserts'
    count: Callable[[], int]  # items stored by the server (after it stopped)
    notes: str


@contextlib.contextmanager
def sqlite_databases(workdir: Path) -> Iterator[Database]:
    path = workdir / "bench.db"

    def count() -> int:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])

    yield Database(
        label="SQLite",
        url=f"sqlite+aiosqlite:///{path}",
        raw_url=f"sqlite+aiosqlite:///{workdir / 'raw.db'}",
        count=count,
        notes=f"SQLite {sqlite3.sqlite_version} in WAL mode (synchronous=NORMAL) on a fresh "
        "temporary file",
    )


@contextlib.contextmanager
def postgres_databases(admin_dsn: str) -> Iterator[Database]:
    import asyncpg

    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    names = [f"signoff_bench_{tag}", f"signoff_bench_raw_{tag}"]
    base = admin_dsn.rsplit("/", 1)[0]

    async def admin(*sql: str) -> list[Any]:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            return [await conn.fetchval(s) for s in sql]
        finally:
            await conn.close()

    version, sync_commit = asyncio.run(admin("SHOW server_version", "SHOW synchronous_commit"))
    for name in names:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))

    def count() -> int:
        async def go() -> int:
            conn = await asyncpg.connect(f"{base}/{names[0]}", timeout=10)
            try:
                return int(await conn.fetchval("SELECT count(*) FROM items"))
            finally:
                await conn.close()

        return asyncio.run(go())

    sa_base = base.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield Database(
            label="PostgreSQL",
            url=f"{sa_base}/{names[0]}",
            raw_url=f"{sa_base}/{names[1]}",
            count=count,
            notes=f"PostgreSQL {version} on 127.0.0.1 (the same machine), a fresh database, "
            f"synchronous_commit={sync_commit}",
        )
    finally:
        for name in names:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- one database -------------------------------------------------------------------------


@dataclass
class DbRun:
    db: Database
    server: Server
    phases: dict[str, PhaseRuns]
    raw: list[RawResult]
    stored: int
    profile: Profile | None

    @property
    def expected(self) -> int:
        return sum(p.stored for p in self.phases.values())


def phases_for(server: Server, args: argparse.Namespace) -> list[Phase]:
    auth = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    single, batch = f"{server.base}/v1/items", f"{server.base}/v1/items:batch"
    return [
        Phase(
            key="hello",
            endpoint="GET /hello",
            route=None,
            url=f"{server.base}/hello",
            headers={},
            body=None,
            status=200,
            expect_body=HELLO_BODY,
            clients=args.concurrency,
        ),
        *(
            Phase(
                key=key,
                endpoint="POST /v1/items",
                route=item["route"],
                url=single,
                headers=auth,
                body=json.dumps(item).encode(),
                status=201,
                clients=args.concurrency,
                items_per_answer=1,
            )
            for key, item in (("review", ITEM), ("auto", AUTO_ITEM))
        ),
        *(
            Phase(
                key=key,
                endpoint="POST /v1/items:batch",
                route=item["route"],
                url=batch,
                headers=auth,
                body=json.dumps({"items": [item] * BATCH}).encode(),
                status=201,
                clients=args.batch_clients,
                items_per_answer=BATCH,
            )
            for key, item in (("batch", ITEM), ("batch-auto", AUTO_ITEM))
        ),
    ]


def run_database(db: Database, workdir: Path, args: argparse.Namespace) -> DbRun:
    with running_server(workdir, db.url, gc_threshold=args.gc_threshold) as server:
        print(
            f"{db.label}: server pid {server.process.pid} on {server.base} "
            f"({server.http}, {server.loop})",
            flush=True,
        )
        phases = [p for p in phases_for(server, args) if p.key in args.phases]
        runs = {p.key: PhaseRuns(p) for p in phases}
        for round_no in range(1, args.rounds + 1):
            for phase in phases:
                print(f"  round {round_no}/{args.rounds}: {phase.name} ... ", end="", flush=True)
                result = run_phase(
                    phase, server, procs=args.procs, warmup=args.warmup, seconds=args.seconds
                )
                runs[phase.key].rounds.append(result)
                unit = (
                    f"{result.rate * phase.items_per_answer:,.0f} items/s"
                    if phase.items_per_answer > 1
                    else f"{result.rate:,.0f} req/s"
                )
                print(
                    f"{unit}, p99 {percentile(result.latencies_ms, 99):.1f} ms, "
                    f"{result.errors} errors, other processes {_cores(result.other_cores)} cores",
                    flush=True,
                )
        profile = None
        if args.profile_seconds > 0 and db.label == "SQLite" and "review" in runs:
            profile = profile_ingest(runs["review"], server, workdir, args)
    stored = db.count()
    print("  raw inserts into a second fresh database ... ", end="", flush=True)
    raw = asyncio.run(raw_inserts(db.raw_url, seconds=RAW_SECONDS))
    print(", ".join(f"{r.name}: {r.rate:,.0f} rows/s" for r in raw), flush=True)
    return DbRun(db=db, server=server, phases=runs, raw=raw, stored=stored, profile=profile)


def profile_ingest(
    runs: PhaseRuns, server: Server, workdir: Path, args: argparse.Namespace
) -> Profile | None:
    """One more single-item ``review`` phase, under py-spy; not among the figures, but
    its answers are stored and counted."""
    if py_spy() is None:
        print("  profile: py-spy is not installed (pip install -e '.[bench]'); skipped")
        return None
    out = workdir / "ingest.pyspy.txt"
    print(f"  profile: {runs.phase.name} under py-spy for {args.profile_seconds:g} s ... ", end="")
    rate = 250
    extra = run_phase(
        runs.phase,
        server,
        procs=args.procs,
        warmup=1.0,
        seconds=args.profile_seconds,
        during=lambda: record_profile(
            server.process.pid, seconds=args.profile_seconds, out=out, rate_hz=rate
        ),
    )
    runs.extra_stored = extra.ok_total * runs.phase.items_per_answer
    if not out.exists():
        print("no samples")
        return None
    if args.profile_out:
        shutil.copy(out, args.profile_out)
    profile = summarise_profile(out, seconds=args.profile_seconds, rate_hz=rate)
    print(f"{profile.samples} samples", flush=True)
    return profile


# -- report -------------------------------------------------------------------------------


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _per_round(rates: Sequence[float]) -> str:
    return " / ".join(f"{x:,.0f}" for x in rates)


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def markdown(
    runs: Sequence[DbRun], args: argparse.Namespace, when: dt.datetime, *, skipped: str | None
) -> str:
    lines = [SECTION, ""]
    lines += _targets(runs)
    if skipped:
        lines += [f"**Not measured:** {skipped}.", ""]
    for run in runs:
        lines += _database_section(run)
    server = runs[0].server
    lines += [
        "### How this was measured",
        "",
        f"- Date: {when:%Y-%m-%d %H:%M %Z}",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- Server: uvicorn ({server.http}, {server.loop} loop), one process, log level "
        "warning, access log off; routes `review` (every item pending, posted to the "
        "built-in web surface) and `moderation` (every item approved by policy: its "
        "decision row is written with it; no release target, no callback)",
        f"- Single items: {args.concurrency} closed-loop aiohttp clients, one keep-alive "
        f"connection each, in {args.procs} load-generator process(es) on the same machine; "
        f"a {len(json.dumps(ITEM))}-byte email item, 201 expected",
        f"- Batches: {args.batch_clients} closed-loop clients, each call {BATCH:,} of the "
        f"same items ({len(json.dumps({'items': [ITEM] * BATCH})):,} bytes), 201 expected; "
        "items/s = calls answered in the window x 1,000 / its length; the answer comes "
        "after the commit, so every item counted is durable (SQLite: committed to the WAL "
        "with synchronous=NORMAL, which survives a crash of the process but not a power "
        "loss; PostgreSQL: synchronous_commit as shown)",
        f"- {args.rounds} round(s), phases interleaved, each per round {args.warmup:g} s "
        f"warm-up, then {args.seconds:g} s measured; rates are medians over rounds; "
        "latency = send to last byte read, nearest-rank percentiles over all rounds' "
        "windows; errors counted over warm-ups and windows of all rounds",
        "- Raw inserts: one task, SQLAlchemy Core `insert()` of pending `review` item rows "
        "(new id each) into a second fresh database through `storage.db.make_engine` (the "
        f"server's engine setup), each mode for {RAW_SECONDS:g} s",
        "",
        "On a shared VM single runs vary a lot, hence the interleaved rounds and medians: "
        "compare ratios rather than absolute rates, look at the spread of the per-round "
        "figures, and trust a round only when *anything else* stays near 0.",
        "",
        "Reproduce with `make bench` (flags: `.venv/bin/python bench/ingest.py --help`; "
        f"this run: `{_command(args)}`).",
    ]
    # a figure with nothing to take it from (no commit in a hello phase, say) shows as "-"
    return re.sub(r"\bnan\b", "-", "\n".join(lines)) + "\n"


def _command(args: argparse.Namespace) -> str:
    parts = ["bench/ingest.py"]
    defaults = parse_args([])
    for name in ("seconds", "warmup", "rounds", "concurrency", "batch_clients", "procs"):
        if getattr(args, name) != getattr(defaults, name):
            parts.append(f"--{name.replace('_', '-')} {getattr(args, name):g}")
    if args.phases != defaults.phases:
        parts.append(f"--phases {','.join(k for k in PHASES if k in args.phases)}")
    if args.postgres:
        parts.append(f"--postgres {args.postgres}")
    return " ".join(parts)


def _targets(runs: Sequence[DbRun]) -> list[str]:
    out = ["Targets (2-core machine; single items on SQLite, batches on both databases):", ""]
    for run in runs:
        hello = run.phases["hello"]
        singles = [run.phases[k] for k in ("review", "auto") if k in run.phases]
        if run.db.label == "SQLite":
            for p in singles:
                ratio = p.rate / hello.rate if hello.rate else math.nan
                out.append(
                    f"- **Single-item ingest ≥ {RATIO_TARGET:.0%} of hello-world** "
                    f"({p.phase.route}, SQLite): {p.rate:,.0f} / "
                    f"{hello.rate:,.0f} req/s = {ratio:.1%}: {_verdict(ratio >= RATIO_TARGET)}"
                )
            for p in singles:
                out.append(
                    f"- **Single-item p99 < {P99_TARGET_MS:.0f} ms at {p.phase.clients} clients** "
                    f"({p.phase.route}, SQLite): {p.p(99):.1f} ms: "
                    f"{_verdict(p.p(99) < P99_TARGET_MS)}"
                )
        for p in (run.phases[k] for k in ("batch", "batch-auto") if k in run.phases):
            out.append(
                f"- **Batch ≥ {BATCH_TARGET:,.0f} items/s, durable on return** "
                f"({p.phase.route}, {run.db.label}): {p.item_rate:,.0f} items/s "
                f"({p.item_rate * 3600 / 1e6:.1f} million an hour): "
                f"{_verdict(p.item_rate >= BATCH_TARGET)}"
            )
    return [*out, ""]


def _database_section(run: DbRun) -> list[str]:
    hello = run.phases["hello"]
    singles = [run.phases[k] for k in ("hello", "review", "auto") if k in run.phases]
    batches = [run.phases[k] for k in ("batch", "batch-auto") if k in run.phases]
    lines = [
        f"### {run.db.label}",
        "",
        run.db.notes + ".",
        "",
        "| endpoint | route | requests/s (median) | per round | vs hello | p50 ms | p99 ms "
        "| errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in singles:
        route = p.phase.route or "-"
        endpoint = f"`{p.phase.endpoint}`"
        ratio = f"{p.rate / hello.rate:.1%}" if hello.rate else "n/a"
        lines.append(
            f"| {endpoint} | {route} | {p.rate:,.0f} | {_per_round(p.rates)} | {ratio} "
            f"| {p.p(50):.1f} | {p.p(99):.1f} | {p.errors} |"
        )
    lines += [
        "",
        "| endpoint | route | items/s (median) | per round | calls/s | call p50 ms "
        "| call p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in batches:
        lines.append(
            f"| `POST /v1/items:batch` | {p.phase.route} | {p.item_rate:,.0f} "
            f"| {_per_round([r * BATCH for r in p.rates])} | {p.rate:,.1f} | {p.p(50):.0f} "
            f"| {p.p(99):.0f} | {p.errors} |"
        )
    driver = "aiosqlite" if run.db.label == "SQLite" else "asyncpg"
    lines += [
        "",
        f"Raw inserts of the same rows, SQLAlchemy Core through {driver}, one task:",
        "",
        "| raw insert | rows/s | transaction p50 ms | transaction p99 ms | compared with |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for raw, key in zip(run.raw, ("review", "batch"), strict=True):
        if key not in run.phases:
            lines.append(
                f"| {raw.name} | {raw.rate:,.0f} | {percentile(raw.latencies_ms, 50):.2f} "
                f"| {percentile(raw.latencies_ms, 99):.2f} | - |"
            )
            continue
        ours = run.phases[key]
        ours_rate = ours.item_rate if ours.phase.items_per_answer > 1 else ours.rate
        lines.append(
            f"| {raw.name} | {raw.rate:,.0f} | {percentile(raw.latencies_ms, 50):.2f} "
            f"| {percentile(raw.latencies_ms, 99):.2f} | {ours.phase.name}: "
            f"{ours_rate:,.0f}/s = {ours_rate / raw.rate:.0%} of it |"
        )
    all_phases = [*singles, *batches]
    lines += [
        "",
        "CPU during the measured windows, in cores (1.00 = one core busy all the time), "
        "mean over rounds; the server figure covers all its threads (the event loop and "
        "the database driver's threads):",
        "",
        "| phase | server | server CPU ms per request (batch: per item) "
        "| load generator (busiest process) | anything else | whole machine |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in all_phases:
        server_cores = p.cores("server_cores")
        per = p.item_rate if p.phase.items_per_answer else p.rate
        per_item = f"{server_cores / per * 1000:.3f}" if server_cores and per else "n/a"
        lines.append(
            f"| {p.phase.name} | {_cores(server_cores)} | {per_item} "
            f"| {_cores(p.cores('loadgen_cores'))} ({_cores(p.cores('loadgen_max_cores'))}) "
            f"| {_cores(p.cores('other_cores'))} | {_cores(p.cores('machine_cores'))} "
            f"of {os.cpu_count()} |"
        )
    lines += [
        "",
        "Inside the server during the measured windows (`/bench/stats`): garbage-collector "
        "pauses, event-loop lag (how late a 5 ms sleep wakes), and the group writer's "
        "commits; over all rounds' windows:",
        "",
        "| phase | GC runs/s | GC ms/s | longest GC ms | full (gen 2) GCs | loop lag p99 ms "
        "| loop lag max ms | commits/s | requests per commit | rows per commit "
        "| commit p50 ms | commit p99 ms | commit max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for p in all_phases:
        d = p.diagnostics()
        if d is None:
            continue
        lines.append(
            f"| {p.phase.name} | {d['gc_per_s']:.1f} | {d['gc_ms_per_s']:.1f} "
            f"| {d['gc_max_ms']:.1f} | {d['gc2']:.0f} | {d['lag_p99_ms']:.1f} "
            f"| {d['lag_max_ms']:.1f} | {d['commits_per_s']:.1f} "
            f"| {d['requests_per_commit']:.1f} | {d['rows_per_commit']:.1f} "
            f"| {d['commit_p50_ms']:.1f} | {d['commit_p99_ms']:.1f} | {d['commit_max_ms']:.1f} |"
        )
    disturbed = [
        f"{p.phase.name} round{'s' if len(p.disturbed_rounds) > 1 else ''} "
        f"{', '.join(map(str, p.disturbed_rounds))}"
        for p in all_phases
        if p.disturbed_rounds
    ]
    if disturbed:
        lines += [
            "",
            f"**Warning:** other processes used over {NOISE:.2f} cores during "
            f"{'; '.join(disturbed)}; those rounds' figures are likely low.",
        ]
    match = "match" if run.stored == run.expected else "MISMATCH"
    lines += [
        "",
        f"Stored afterwards: {run.stored:,} items for {run.expected:,} items answered "
        f"201 ({match}).",
        "",
    ]
    if run.profile is not None:
        lines += _profile_lines(run.profile)
    return lines


def _profile_lines(profile: Profile) -> list[str]:
    total = max(1, profile.samples)
    lines = [
        f"Profile of the server during single-item ingest on `review` (py-spy, "
        f"{profile.rate_hz} Hz for {profile.seconds:g} s, {profile.samples:,} samples of "
        "busy threads, waits left out: aiosqlite's worker waiting for work and the event "
        "loop in epoll; native code counts for the Python frame that called it, so "
        "SQLite's own work shows as aiosqlite; self = innermost frame). By package:",
        "",
        "| package | self % |",
        "| --- | ---: |",
        *(f"| {name} | {n / total:.1%} |" for name, n in profile.by_package),
        "",
        "Top functions (self):",
        "",
        "| function (package) | self % |",
        "| --- | ---: |",
        *(f"| `{name}` | {n / total:.1%} |" for name, n in profile.by_function),
        "",
        "signoff's own functions (inclusive: in the stack):",
        "",
        "| function | inclusive % |",
        "| --- | ---: |",
        *(f"| `{name}` | {n / total:.1%} |" for name, n in profile.inclusive),
        "",
    ]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="measured seconds per phase and round"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per phase and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all phases, interleaved")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="concurrent clients for single items"
    )
    parser.add_argument(
        "--batch-clients", type=int, default=8, help="concurrent clients sending batches"
    )
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument(
        "--phases",
        type=lambda text: {"hello", *(p.strip() for p in text.split(",") if p.strip())},
        default=set(PHASES),
        help=f"which phases to run, of {','.join(PHASES)} (hello always runs)",
    )
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_DSN",
        help="also run on PostgreSQL: a throwaway database is made through this DSN "
        "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=4.0,
        help="seconds of py-spy profile of single-item ingest on SQLite (0: none)",
    )
    parser.add_argument(
        "--profile-out", type=Path, help="keep py-spy's collapsed stacks in this file"
    )
    parser.add_argument(
        "--gc-threshold",
        metavar="G0,G1,G2",
        help="gc.set_threshold() in the server, for experiments (default: as the app sets it)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS.name} alone"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.profile_seconds < 0:
        parser.error("--seconds must be positive, --warmup and --profile-seconds not negative")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= args.procs <= args.concurrency:
        parser.error("--procs must be between 1 and --concurrency")
    if args.batch_clients < 1:
        parser.error("--batch-clients must be at least 1")
    if args.phases - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(args.phases - set(PHASES)))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve()
        return 0
    # SIGTERM unwinds like Ctrl-C, so the server and load generators are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.monotonic()
    runs: list[DbRun] = []
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        sqlite_dir = workdir / "sqlite"
        sqlite_dir.mkdir()
        with sqlite_databases(sqlite_dir) as db:
            runs.append(run_database(db, sqlite_dir, args))
        skipped = None
        if args.postgres:
            pg_dir = workdir / "postgres"
            pg_dir.mkdir()
            with contextlib.ExitStack() as stack:
                try:
                    db = stack.enter_context(postgres_databases(args.postgres))
                except Exception as exc:  # refused, unknown host, no such role, ...
                    skipped = f"PostgreSQL at {args.postgres} is not reachable: {exc}"
                    print(f"WARNING: {skipped}; measured SQLite only", file=sys.stderr)
                else:
                    runs.append(run_database(db, pg_dir, args))
        logs = {
            run.db.label: (workdir / d / "server.log").read_text(errors="replace")
            for run, d in zip(runs, ("sqlite", "postgres"), strict=False)
        }
    section = markdown(runs, args, dt.datetime.now(dt.UTC).astimezone(), skipped=skipped)
    print()
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS, SECTION, section)
        print(f"wrote the section {SECTION!r} of {BENCHMARKS}")
    for label, log in logs.items():
        if log.strip():
            lines = log.splitlines()
            print(
                f"\n{label} server log: {len(lines)} lines; the last ones:", *lines[-10:], sep="\n"
            )
    print(f"\ntook {time.monotonic() - started:.0f} s")
    failed = False
    for run in runs:
        for p in run.phases.values():
            if p.errors:
                failed = True
                print(
                    f"ERROR: {run.db.label}: {p.errors} failed requests on {p.phase.name}, e.g.:",
                    file=sys.stderr,
                )
                for sample in p.error_samples:
                    print(f"  {sample}", file=sys.stderr)
        if run.stored != run.expected:
            failed = True
            print(
                f"ERROR: {run.db.label}: the database holds {run.stored} items, but clients "
                f"were answered 201 for {run.expected}",
                file=sys.stderr,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
