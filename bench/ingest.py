"""Ingest throughput of a real signoff server, measured against a bare hello-world route.

Run from the repository root: ``make bench`` (``.venv/bin/python bench/ingest.py``).

Method
------
* **Server.** This script starts itself again in a subprocess (``--serve``), in a fresh
  temporary directory, with ``SIGNOFF_DATABASE_URL`` pointing at a new SQLite file in
  that directory, ``SIGNOFF_LOG_LEVEL=warning`` and no route file, so the built-in
  ``default`` route is used: a pending route that posts each item to the built-in web
  surface. The child builds the real stack (``bot.app.build(load_settings())`` and
  ``bot.app.create_app(system)``), applies the migrations, creates the API key ``bench``
  and adds one bare endpoint, ``GET /hello`` returning ``{"hello": "world"}``, to the same
  FastAPI app. It serves with uvicorn (``log_level=warning``, access log off) on a
  socket it binds itself on 127.0.0.1 with a free port, and hands the port and the key
  to the parent as one JSON line on stdout. It stops on SIGTERM, or when its stdin
  closes (so it also goes away if the parent dies).
* **Load.** ``--procs`` load-generator processes share ``--concurrency`` clients between
  them (default: 32 clients in 1 process). Each client is an aiohttp session holding one
  keep-alive connection and sends its next request as soon as the previous one is
  answered (closed loop). Two phases run against the same server: ``GET /hello``, and
  ``POST /v1/items`` with a bearer key and a small email item (expecting 201). Each
  phase has a warm-up (``--warmup``, default 2 s) and then a measured window
  (``--seconds``, default 6 s); requests that complete inside the window count, and
  their latencies (send to fully read answer) are kept. Errors (an unexpected status or
  body, or a failed request) are counted over the whole phase, warm-up included.
* **Rounds.** The machine this runs on is a noisy shared VM, where one run of a phase can
  be far off the next. So the phases run ``--rounds`` times (default 3), interleaved:
  hello, ingest, hello, ingest, ... Per endpoint, the rate reported is the median over
  rounds (the per-round rates are shown too), p50 and p99 are taken over the latencies
  of all rounds' windows, and errors are summed. The headline ratio is median(ingest) /
  median(hello); the per-round ratios (ingest round i / hello round i) and their minimum
  are shown beside it.
* **CPU.** On 2 cores the load generator competes with the server for CPU, so each
  phase also reports how busy the server process (all its threads) and the load
  generator were during the window, in cores (1.00 = one core fully used), read from
  ``/proc``; the table gives the mean over rounds per endpoint. A load generator near
  1.00 per process means the client, not the server, may be what limits that phase.
  Any round in which other processes used more than ``NOISE`` cores is named in a
  warning.
* **Check.** After the server has stopped, the items in the SQLite file are counted and
  compared with the 201 answers the clients received over all rounds.

The results go to stdout and to the ``## Ingest (bench/ingest.py)`` section of
``BENCHMARKS.md`` (that section is replaced; other sections are kept). The target is
ingest >= 25% of the hello-world rate (ratio of the medians). The exit status is
non-zero if any request failed or the stored items do not match the 201 answers;
missing the target alone does not fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import math
import multiprocessing as mp
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Ingest (bench/ingest.py)"
TARGET = 0.25
HELLO_BODY = b'{"hello":"world"}'
ITEM: dict[str, Any] = {
    "route": "default",
    "kind": "email",
    "title": "Refund",
    "content": {
        "to": ["jane@example.com"],
        "subject": "Your refund",
        "body": "Hi Jane, your refund of 42.00 EUR is on its way. Best, the support team",
    },
    "confidence": 0.5,
}
SERVER_START_TIMEOUT = 60.0
MAX_ERROR_SAMPLES = 5
NOISE = 0.25  # cores used by other processes above which a phase is flagged as disturbed


# -- server (child process) ---------------------------------------------------------------


def serve() -> None:
    """Build the real app, add ``GET /hello``, create a key, print port and key, serve."""
    import logging

    import uvicorn

    from bot.app import build, create_app
    from bot.settings import load_settings
    from storage.migrate import upgrade

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        settings = load_settings()
        system = build(settings)
        await upgrade(system.engine)
        key = await system.keys.create(name="bench")
        app = create_app(system, migrate=False)

        @app.get("/hello", include_in_schema=False)
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

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
        ready = {
            "port": sock.getsockname()[1],
            "api_key": key.api_key,
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        }
        print(json.dumps(ready), flush=True)
        await server.serve(sockets=[sock])

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


@contextlib.contextmanager
def running_server(workdir: Path, db_url: str) -> Iterator[Server]:
    """The server subprocess, terminated when the block ends, however it ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env.update(SIGNOFF_DATABASE_URL=db_url, SIGNOFF_LOG_LEVEL="warning")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        cwd=workdir,  # no signoff.yaml or .env here: built-in default route, env settings
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


@dataclass(frozen=True)
class Phase:
    name: str  # as shown in the table
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int
    expect_body: bytes | None  # the exact answer body, when it is fixed


@dataclass
class WorkerResult:
    latencies_ms: list[float] = field(default_factory=list)  # of requests done in the window
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
        timeout = aiohttp.ClientTimeout(total=60)
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
    """One round of one endpoint."""

    name: str
    rate: float
    latencies_ms: list[float]  # sorted, of the requests done in the measured window
    p50_ms: float
    p99_ms: float
    ok_in_window: int
    ok_total: int
    errors: int
    error_samples: list[str]
    server_cores: float | None
    loadgen_cores: float
    loadgen_max_cores: float  # the busiest single load-generator process
    machine_cores: float | None  # all of the machine's CPUs busy, in cores

    @property
    def other_cores(self) -> float | None:
        """CPU used by neither the server nor the load generator: noise from elsewhere."""
        if self.machine_cores is None or self.server_cores is None:
            return None
        return max(0.0, self.machine_cores - self.server_cores - self.loadgen_cores)


def run_phase(
    phase: Phase, server_pid: int, *, procs: int, concurrency: int, warmup: float, seconds: float
) -> PhaseResult:
    """Drive ``phase`` from ``procs`` processes and sample the server's CPU meanwhile."""
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    workers: list[tuple[Any, Connection, EventType]] = []
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
        time.sleep(max(0.0, start + warmup - time.monotonic()))
        server_before, machine_before = _proc_cpu(server_pid), _machine_busy()
        time.sleep(max(0.0, start + warmup + seconds - time.monotonic()))
        server_after, machine_after = _proc_cpu(server_pid), _machine_busy()
        results: list[WorkerResult] = []
        for process, receiver, _ in workers:
            if not receiver.poll(warmup + seconds + 120):
                raise RuntimeError(f"load generator {process.pid} sent no result")
            results.append(receiver.recv())
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
        name=phase.name,
        rate=len(latencies) / seconds,
        latencies_ms=latencies,
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        ok_in_window=len(latencies),
        ok_total=sum(r.ok_total for r in results),
        errors=sum(r.errors for r in results),
        error_samples=[s for r in results for s in r.error_samples][:MAX_ERROR_SAMPLES],
        server_cores=_delta(server_before, server_after, seconds),
        loadgen_cores=sum(r.cpu_seconds for r in results) / seconds,
        loadgen_max_cores=max(r.cpu_seconds for r in results) / seconds,
        machine_cores=_delta(machine_before, machine_after, seconds),
    )


def _percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds used so far by process ``pid`` (all threads), from /proc; None if n/a."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float | None:
    """CPU seconds all CPUs have spent busy since boot, from /proc/stat; None if n/a."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user..steal; guest is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def _delta(before: float | None, after: float | None, seconds: float) -> float | None:
    return None if before is None or after is None else (after - before) / seconds


# -- report -------------------------------------------------------------------------------


@dataclass
class EndpointResult:
    """All rounds of one endpoint."""

    name: str
    rounds: list[PhaseResult]

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.rounds]

    @property
    def rate(self) -> float:
        """Median requests/s over rounds."""
        return statistics.median(self.rates)

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(x for r in self.rounds for x in r.latencies_ms)

    @property
    def ok_total(self) -> int:
        return sum(r.ok_total for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    @property
    def error_samples(self) -> list[str]:
        return [s for r in self.rounds for s in r.error_samples][:MAX_ERROR_SAMPLES]

    # CPU: means over rounds (None when a figure is missing in any round)
    @property
    def server_cores(self) -> float | None:
        return _mean([r.server_cores for r in self.rounds])

    @property
    def loadgen_cores(self) -> float | None:
        return _mean([r.loadgen_cores for r in self.rounds])

    @property
    def loadgen_max_cores(self) -> float | None:
        return _mean([r.loadgen_max_cores for r in self.rounds])

    @property
    def other_cores(self) -> float | None:
        return _mean([r.other_cores for r in self.rounds])

    @property
    def machine_cores(self) -> float | None:
        return _mean([r.machine_cores for r in self.rounds])

    @property
    def disturbed_rounds(self) -> list[int]:
        """1-based numbers of the rounds where other processes used over ``NOISE`` cores."""
        return [i for i, r in enumerate(self.rounds, 1) if (r.other_cores or 0) > NOISE]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return None if not present or len(present) < len(values) else statistics.fmean(present)


@dataclass
class Report:
    hello: EndpointResult
    ingest: EndpointResult
    stored_items: int
    args: argparse.Namespace
    server: Server
    when: dt.datetime

    @property
    def ratio(self) -> float:
        """median(ingest) / median(hello): what PASS/FAIL is judged on."""
        return self.ingest.rate / self.hello.rate if self.hello.rate else math.nan

    @property
    def round_ratios(self) -> list[float]:
        return [
            i.rate / h.rate if h.rate else math.nan
            for h, i in zip(self.hello.rounds, self.ingest.rounds, strict=True)
        ]

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET

    @property
    def stored_ok(self) -> bool:
        return self.stored_items == self.ingest.ok_total

    def ratio_line(self) -> str:
        ratios = self.round_ratios
        return (
            f"median(ingest) / median(hello) = {self.ratio:.1%}; per round: "
            f"{' / '.join(f'{x:.1%}' for x in ratios)} (min {min(ratios):.1%})"
        )

    def markdown(self) -> str:
        a = self.args
        n = len(self.hello.rounds)
        endpoints = (self.ingest, self.hello)
        rows = [
            "| endpoint | requests/s (median) | requests/s per round | p50 ms | p99 ms | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for e in endpoints:
            lat = e.latencies_ms
            rows.append(
                f"| {e.name} | {e.rate:,.0f} | {_per_round(e.rates)} "
                f"| {_percentile(lat, 50):.1f} | {_percentile(lat, 99):.1f} | {e.errors} |"
            )
        cpu = [
            "| endpoint | server | load generator (busiest process) | anything else "
            "| whole machine |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for e in endpoints:
            cpu.append(
                f"| {e.name} | {_cores(e.server_cores)} | {_cores(e.loadgen_cores)} "
                f"({_cores(e.loadgen_max_cores)}) | {_cores(e.other_cores)} "
                f"| {_cores(e.machine_cores)} of {os.cpu_count()} |"
            )
        disturbed = [
            f"{e.name} round{'s' if len(e.disturbed_rounds) > 1 else ''} "
            f"{', '.join(map(str, e.disturbed_rounds))}"
            for e in (self.hello, self.ingest)
            if e.disturbed_rounds
        ]
        ratios = self.round_ratios
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            SECTION,
            "",
            *rows,
            "",
            f"**Ratio ingest / hello (medians): {self.ratio:.1%}.** "
            f"Target: ingest ≥ {TARGET:.0%} of the hello-world rate on SQLite: **{verdict}**. "
            f"Per round: {' / '.join(f'{x:.1%}' for x in ratios)} (min {min(ratios):.1%}).",
            "",
            *(
                [
                    f"**Warning:** other processes used over {NOISE:.2f} cores during "
                    f"{' and '.join(disturbed)}; those rounds' figures are likely low. "
                    "Run again on a quieter machine if the medians depend on them.",
                    "",
                ]
                if disturbed
                else []
            ),
            f"- Date: {self.when:%Y-%m-%d %H:%M %Z}",
            f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}",
            f"- Server: uvicorn ({self.server.http}, {self.server.loop} loop), one process, "
            "SQLite in WAL mode (synchronous=NORMAL) on a fresh temporary file, built-in "
            "`default` route (pending, posted to the built-in web surface), log level warning, "
            "access log off",
            f"- Load: {a.concurrency} closed-loop aiohttp clients, one keep-alive connection "
            f"each, in {a.procs} load-generator process(es) on the same machine; {n} round(s), "
            "endpoints interleaved (hello, ingest, hello, ingest, ...), each endpoint per round "
            f"{a.warmup:g} s warm-up, then {a.seconds:g} s measured; requests/s = answers "
            "completed in the measured window / its length, median over rounds; latency = send "
            "to last byte read, nearest-rank percentiles over all rounds' windows; errors "
            "counted over warm-ups and windows of all rounds",
            f"- `POST /v1/items`: bearer API key, a {len(json.dumps(ITEM))}-byte email item, "
            f"201 expected; stored afterwards: {self.stored_items} items for "
            f"{self.ingest.ok_total} answers of 201 "
            f"({'match' if self.stored_ok else 'MISMATCH'})",
            "- `GET /hello`: a bare FastAPI route added to the same app (same middleware)",
            "",
            "CPU used during the measured windows, in cores (1.00 = one core busy all the "
            f"time), mean over the {n} round(s) of each endpoint; the server figure covers all "
            "its threads (the event loop and one aiosqlite thread per pooled connection):",
            "",
            *cpu,
            "",
            "On a shared VM single runs vary a lot, hence the interleaved rounds and medians: "
            "compare the ratio rather than absolute rates, look at the spread of the per-round "
            "figures, and trust a round only when *anything else* stays near 0.",
            "",
            "Reproduce with `make bench` (flags: `.venv/bin/python bench/ingest.py --help`).",
        ]
        return "\n".join(lines) + "\n"


def _per_round(rates: Sequence[float]) -> str:
    return " / ".join(f"{x:,.0f}" for x in rates)


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def write_section(path: Path, section: str) -> None:
    """Replace the ingest section of ``path`` (up to the next ``## `` heading), or add it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def count_items(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per endpoint and round"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up seconds per endpoint and round"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of hello + ingest, interleaved"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients in all")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS.name} alone"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= args.procs <= args.concurrency:
        parser.error("--procs must be between 1 and --concurrency")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve()
        return 0
    # SIGTERM unwinds like Ctrl-C, so the server and load generators are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        db_path = workdir / "bench.db"
        with running_server(workdir, f"sqlite+aiosqlite:///{db_path}") as server:
            print(
                f"server pid {server.process.pid} on {server.base} ({server.http}); "
                f"{args.concurrency} clients in {args.procs} process(es), "
                f"{args.rounds} round(s) of {args.warmup:g} s warm-up + {args.seconds:g} s "
                "per endpoint, interleaved",
                flush=True,
            )
            hello = Phase(
                name="`GET /hello`",
                method="GET",
                url=f"{server.base}/hello",
                headers={},
                body=None,
                status=200,
                expect_body=HELLO_BODY,
            )
            ingest = Phase(
                name="`POST /v1/items`",
                method="POST",
                url=f"{server.base}/v1/items",
                headers={
                    "Authorization": f"Bearer {server.api_key}",
                    "Content-Type": "application/json",
                },
                body=json.dumps(ITEM).encode(),
                status=201,
                expect_body=None,
            )
            results = {phase.name: EndpointResult(phase.name, []) for phase in (hello, ingest)}
            for round_no in range(1, args.rounds + 1):
                for phase in (hello, ingest):
                    print(f"round {round_no}/{args.rounds}: {phase.name} ... ", end="", flush=True)
                    result = run_phase(
                        phase,
                        server.process.pid,
                        procs=args.procs,
                        concurrency=args.concurrency,
                        warmup=args.warmup,
                        seconds=args.seconds,
                    )
                    results[phase.name].rounds.append(result)
                    print(
                        f"{result.rate:,.0f} req/s, {result.errors} errors, "
                        f"other processes {_cores(result.other_cores)} cores",
                        flush=True,
                    )
        server_log = (workdir / "server.log").read_text(errors="replace")
        items = count_items(db_path)
    report = Report(
        hello=results[hello.name],
        ingest=results[ingest.name],
        stored_items=items,
        args=args,
        server=server,
        when=dt.datetime.now(dt.UTC).astimezone(),
    )
    section = report.markdown()
    print()
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS, section)
        print(f"wrote the section {SECTION!r} of {BENCHMARKS}")
    if server_log.strip():
        lines = server_log.splitlines()
        print(f"\nserver log: {len(lines)} lines; the last ones:", *lines[-10:], sep="\n")
    verdict = "PASS" if report.passed else "FAIL (below target; not an error)"
    for e in (report.hello, report.ingest):
        print(f"\n{e.name} per round: {_per_round(e.rates)} req/s (median {e.rate:,.0f})", end="")
    print(f"\n{report.ratio_line()}; target ≥ {TARGET:.0%}: {verdict}")
    failed = False
    for r in (report.hello, report.ingest):
        if r.errors:
            failed = True
            print(f"ERROR: {r.errors} failed requests on {r.name}, e.g.:", file=sys.stderr)
            for sample in r.error_samples:
                print(f"  {sample}", file=sys.stderr)
    if not report.stored_ok:
        failed = True
        print(
            f"ERROR: the database holds {items} items, but clients got "
            f"{report.ingest.ok_total} answers of 201",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
