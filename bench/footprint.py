"""Footprint: the resident memory of ``signoff serve``, idle and with a million items
stored, against a bare Python interpreter and a bare uvicorn + FastAPI app.

Run from the repository root: ``make bench`` (``.venv/bin/python bench/footprint.py``).

Method
------
* **Processes, one after the other, each in a fresh temporary directory** (no route
  file, no ``.env``; every ``SIGNOFF_`` variable and proxy removed from the
  environment):

  1. a bare interpreter, ``python -c 'import sys; sys.stdin.read()'`` (the venv's
     Python): what any Python process costs;
  2. a bare uvicorn + FastAPI app with one route, ``GET /hello`` (this script with a
     hidden flag, served like ``signoff serve`` serves: ``uvicorn.Server`` on host and
     port): what the web stack costs before signoff adds anything;
  3. ``signoff serve`` (the installed console script) on a fresh SQLite file: the
     built-in ``default`` route, no Slack, Discord, OpenAI or SMTP settings, log level
     warning; it applies the migrations itself;
  4. ``signoff serve`` on a SQLite file holding ``--items`` pending items (default
     1,000,000) of the ``default`` route, all of one API key. The file is made by
     ``signoff db upgrade`` and ``signoff keys create``, then filled with raw
     ``executemany`` inserts (the column list and the value encoding come from one
     row written through SQLAlchemy, so they follow the schema), in WAL mode.

* **Readings**, from ``/proc/PID/status`` (``VmRSS``; ``VmHWM``, the peak) and
  ``/proc/PID/smaps_rollup`` (``Pss``: shared pages divided among the processes that map
  them), in MiB: *idle*, ``--settle`` seconds (default 3) after the server first
  answered ``GET /healthz`` (the interpreter: after the same wait); *after requests*,
  once the server has answered ``--pages`` list pages (``GET /v1/items?limit=200``,
  following ``next_cursor``) and ``--gets`` item reads (``GET /v1/items/{id}``, ids
  spread over the table; on the empty database they answer 404) and then settled again
  (the hello app: the same number of ``GET /hello``).
* **Target**: ``signoff serve`` idle RSS < 150 MB (150,000,000 bytes, 143.1 MiB), on
  the empty and on the full database.

The results go to stdout and to the ``## Footprint (bench/footprint.py)`` section of
``BENCHMARKS.md`` (that section is replaced; other sections are kept). The exit status
is non-zero if a process fails to start or a request fails; missing the target alone
does not fail the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import free_port, write_section

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Footprint (bench/footprint.py)"
TARGET_BYTES = 150_000_000
MIB = 1024 * 1024
START_TIMEOUT = 120.0
CHUNK = 50_000  # rows per executemany
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONTENT = {
    "to": ["jane@example.com"],
    "subject": "Your refund",
    "body": "Hi Jane, your refund of 42.00 EUR is on its way. Best, the support team",
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- the hello app (child process) ----------------------------------------------------------


def serve_hello(port: int) -> None:
    """A bare FastAPI app with one route, served by uvicorn as ``signoff serve`` does."""
    import asyncio

    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    asyncio.run(uvicorn.Server(config).serve())


# -- processes and readings -----------------------------------------------------------------


def clean_env(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and "proxy" not in k.lower()
    }
    env.update(settings)
    return env


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM and Pss of ``pid`` in MiB (Pss missing where smaps_rollup is)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1]) / 1024
    return out


def get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=60) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


@contextlib.contextmanager
def started(
    args: Sequence[str], *, env: dict[str, str], cwd: Path, health: str | None
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """The process, and the seconds until ``health`` answered 200 (when given)."""
    log = (cwd / "process.log").open("wb")
    begun = time.monotonic()
    process = subprocess.Popen(
        list(args), env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=log, stderr=log
    )
    try:
        if health is not None:
            deadline = begun + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{args[0]} exited with {process.returncode}:\n"
                        + (cwd / "process.log").read_text(errors="replace")[-4000:]
                    )
                with contextlib.suppress(OSError):
                    if get(health)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(args)} not ready in {START_TIMEOUT:.0f} s")
                time.sleep(0.05)
        yield process, time.monotonic() - begun
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            process.stdin.close()
        log.close()


def signoff(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "signoff"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"signoff {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


# -- seeding --------------------------------------------------------------------------------


def _item_id(n: int) -> str:
    return f"itm_{n:026d}"  # digits are Crockford base-32 too; sorts by n


def seed(db: Path, *, items: int, integrator_id: int) -> float:
    """Fill ``db`` (migrated) with ``items`` pending items; the seconds it took."""
    from sqlalchemy import create_engine, event

    from storage.models import Item

    begun = time.perf_counter()
    # One row through SQLAlchemy, to learn the INSERT and how each value is stored.
    engine = create_engine(f"sqlite:///{db}")
    captured: list[tuple[str, Any]] = []
    event.listen(
        engine, "before_cursor_execute", lambda _c, _k, sql, p, *_: captured.append((sql, p))
    )
    template = {
        "id": _item_id(0),
        "integrator_id": integrator_id,
        "route": "default",
        "kind": "email",
        "title": "Refund 0",
        "confidence": 0.5,
        "content": CONTENT,
        "metadata": {},
        "state": "pending",
        "release_state": "none",
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    with engine.begin() as conn:
        conn.execute(Item.__table__.insert(), [template])  # type: ignore[attr-defined]
    engine.dispose()
    sql, params = next((s, p) for s, p in captured if s.lstrip().upper().startswith("INSERT"))
    columns = [c.strip().strip('"') for c in sql.split("(", 1)[1].split(")", 1)[0].split(",")]
    at = {name: columns.index(name) for name in ("id", "title", "created_at", "updated_at")}
    base = list(params)
    stamp = base[at["created_at"]]
    if not isinstance(stamp, str):
        raise RuntimeError(f"unexpected timestamp encoding: {stamp!r}")

    def rows(start: int, stop: int) -> Iterator[list[Any]]:
        for n in range(start, stop):
            row = base.copy()
            row[at["id"]] = _item_id(n)
            row[at["title"]] = f"Refund {n}"
            when = (NOW - timedelta(seconds=items - n)).strftime("%Y-%m-%d %H:%M:%S.%f")
            row[at["created_at"]] = row[at["updated_at"]] = when
            yield row

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # seeding only; serve sets its own
        conn.execute("BEGIN")
        for start in range(1, items, CHUNK):
            conn.executemany(sql, rows(start, min(start + CHUNK, items)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - begun


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Reading:
    name: str
    data: str
    idle: dict[str, float]
    after: dict[str, float] | None = None
    start_s: float | None = None
    requests: str = ""
    errors: list[str] = field(default_factory=list)


def measure_python(workdir: Path, *, settle: float) -> Reading:
    with started(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        env=clean_env(),
        cwd=workdir,
        health=None,
    ) as (process, _):
        time.sleep(settle)
        return Reading("bare Python interpreter", "—", memory(process.pid))


def measure_hello(workdir: Path, *, settle: float, requests: int) -> Reading:
    port = free_port()
    env = clean_env(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    with started(
        [sys.executable, str(Path(__file__).resolve()), "--hello", str(port)],
        env=env,
        cwd=workdir,
        health=f"http://127.0.0.1:{port}/healthz",
    ) as (process, start_s):
        time.sleep(settle)
        reading = Reading("uvicorn + FastAPI, one route", "—", memory(process.pid), start_s=start_s)
        for _ in range(requests):
            status, _ = get(f"http://127.0.0.1:{port}/hello")
            if status != 200:
                reading.errors.append(f"GET /hello: HTTP {status}")
        time.sleep(settle)
        reading.after = memory(process.pid)
        reading.requests = f"{requests:,} `GET /hello`"
        return reading


def measure_signoff(
    workdir: Path, *, items: int, settle: float, pages: int, gets: int
) -> tuple[Reading, float | None]:
    """``signoff serve`` on a database of ``items`` items (0: a fresh one); the reading and
    the seconds the seeding took (None without seeding)."""
    port = free_port()
    db = workdir / "signoff.db"
    env = clean_env(
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        SIGNOFF_HOST="127.0.0.1",
        SIGNOFF_PORT=str(port),
        SIGNOFF_LOG_LEVEL="warning",
    )
    signoff("db", "upgrade", env=env, cwd=workdir)
    key = json.loads(signoff("keys", "create", "bench", "--json", env=env, cwd=workdir))
    seed_s = None
    if items:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            (owner,) = conn.execute("SELECT id FROM api_keys WHERE name = 'bench'").fetchone()
        print(f"  seeding {items:,} items ...", flush=True)
        seed_s = seed(db, items=items, integrator_id=int(owner))
        size = sum(p.stat().st_size for p in workdir.glob("signoff.db*")) / MIB
        print(f"  seeded in {seed_s:.1f} s ({size:,.0f} MiB)", flush=True)
    base = f"http://127.0.0.1:{port}"
    data = f"{items:,} pending items" if items else "empty (fresh database)"
    with started(
        [str(Path(sys.executable).parent / "signoff"), "serve"],
        env=env,
        cwd=workdir,
        health=f"{base}/healthz",
    ) as (process, start_s):
        time.sleep(settle)
        reading = Reading("`signoff serve`", data, memory(process.pid), start_s=start_s)
        auth = {"Authorization": f"Bearer {key['api_key']}"}
        cursor: str | None = None
        listed = 0
        for _ in range(pages):
            url = f"{base}/v1/items?limit=200" + (f"&cursor={cursor}" if cursor else "")
            status, body = get(url, headers=auth)
            if status != 200:
                reading.errors.append(f"GET /v1/items: HTTP {status}: {body[:200]!r}")
                break
            page = json.loads(body)
            listed += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        found = 0
        for k in range(gets):
            n = (k * 7919) % items if items else k
            status, body = get(f"{base}/v1/items/{_item_id(n)}", headers=auth)
            found += status == 200
            if status not in (200, 404) or (items and status != 200):
                reading.errors.append(f"GET /v1/items/{_item_id(n)}: HTTP {status}")
        time.sleep(settle)
        reading.after = memory(process.pid)
        reading.requests = (
            f"{pages} list pages ({listed:,} items) + {gets:,} item reads ({found:,} found)"
        )
        return reading, seed_s


# -- report ---------------------------------------------------------------------------------


def _mib(reading: dict[str, float] | None, key: str) -> str:
    if reading is None or key not in reading:
        return "—"
    return f"{reading[key]:,.1f}"


def markdown(
    readings: Sequence[Reading], seed_s: float | None, args: argparse.Namespace, when: dt.datetime
) -> str:
    table = [
        "| process | data | start s | RSS idle | PSS idle | RSS after requests "
        "| PSS after requests | peak RSS | requests |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in readings:
        peak = r.after or r.idle
        table.append(
            f"| {r.name} | {r.data} | {'—' if r.start_s is None else f'{r.start_s:.1f}'} "
            f"| {_mib(r.idle, 'VmRSS')} | {_mib(r.idle, 'Pss')} | {_mib(r.after, 'VmRSS')} "
            f"| {_mib(r.after, 'Pss')} | {_mib(peak, 'VmHWM')} | {r.requests or '—'} |"
        )
    served = [r for r in readings if r.name == "`signoff serve`"]
    worst = max(r.idle["VmRSS"] for r in served)
    passed = worst * MIB < TARGET_BYTES
    python, hello = readings[0], readings[1]
    empty = served[0]
    lines = [
        SECTION,
        "",
        "Resident memory in MiB (RSS from `/proc/PID/status`, PSS from "
        "`/proc/PID/smaps_rollup`; peak = `VmHWM` over the process's life):",
        "",
        *table,
        "",
        f"- **`signoff serve` idle RSS < 150 MB** ({TARGET_BYTES / MIB:.1f} MiB; the larger of "
        f"the empty and the full database): {worst:,.1f} MiB: **{'PASS' if passed else 'FAIL'}**",
        f"- Above the baselines (idle RSS): signoff on the empty database uses "
        f"{empty.idle['VmRSS'] - hello.idle['VmRSS']:,.1f} MiB more than the bare uvicorn + "
        f"FastAPI app, which uses {hello.idle['VmRSS'] - python.idle['VmRSS']:,.1f} MiB more "
        "than a bare interpreter"
        + (
            f"; {served[-1].idle['VmRSS'] - empty.idle['VmRSS']:+,.1f} MiB idle and "
            f"{_delta(served[-1].after, empty.after)} MiB after the requests with "
            f"{args.items:,} items stored than with none"
            if len(served) > 1
            else ""
        ),
        "",
        f"- Date: {when:%Y-%m-%d %H:%M %Z}",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, Python "
        f"{platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}, SQLite {sqlite3.sqlite_version}",
        "- Server: `signoff serve` (uvicorn, one process), SQLite in WAL mode, built-in "
        "`default` route (web inbox only), no Slack, Discord, OpenAI or SMTP settings, log "
        f"level warning; idle = {args.settle:g} s after `GET /healthz` first answered; the "
        "requests are sequential, from one client"
        + (
            f"; {args.items:,} items seeded with raw `executemany` in {seed_s:.1f} s (not in "
            "any figure)"
            if seed_s is not None
            else ""
        ),
        "",
        "Reproduce with `make bench` (flags: `.venv/bin/python bench/footprint.py --help`"
        + (f"; this run: `{_command(args)}`" if _command(args) else "")
        + ").",
    ]
    return "\n".join(lines) + "\n"


def _delta(a: dict[str, float] | None, b: dict[str, float] | None) -> str:
    if a is None or b is None:
        return "n/a"
    return f"{a['VmRSS'] - b['VmRSS']:+,.1f}"


def _command(a: argparse.Namespace) -> str:
    defaults = {"items": 1_000_000, "pages": 20, "gets": 500, "settle": 3.0}
    parts = [f"--{k} {getattr(a, k):g}" for k, v in defaults.items() if getattr(a, k) != v]
    return " ".join(["bench/footprint.py", *parts]) if parts else ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--items", type=int, default=None, help="items in the full database (1000000)"
    )
    parser.add_argument("--pages", type=int, default=20, help="list pages requested (20)")
    parser.add_argument("--gets", type=int, default=500, help="item reads requested (500)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds to wait before a reading (3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20000 items, 1 s settle; implies --no-write",
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS.name} alone"
    )
    parser.add_argument("--hello", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.items is None:
        args.items = 20_000 if args.quick else 1_000_000
    if args.quick:
        args.settle = min(args.settle, 1.0)
        args.no_write = True
    if args.items < 1 or args.pages < 0 or args.gets < 0 or args.settle < 0:
        parser.error("--items must be positive; --pages, --gets and --settle not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.hello:
        serve_hello(args.hello)
        return 0
    # SIGTERM unwinds like Ctrl-C, so servers are stopped and temporary files go
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    readings: list[Reading] = []
    seed_s = None
    steps = [
        ("bare Python interpreter", lambda d: measure_python(d, settle=args.settle)),
        (
            "uvicorn + FastAPI hello app",
            lambda d: measure_hello(d, settle=args.settle, requests=args.pages + args.gets),
        ),
        (
            "signoff serve, empty database",
            lambda d: measure_signoff(
                d, items=0, settle=args.settle, pages=args.pages, gets=args.gets
            )[0],
        ),
    ]
    for label, step in steps:
        print(f"{label} ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="signoff-bench-footprint-") as tmp:
            readings.append(step(Path(tmp)))
        _print(readings[-1])
    print(f"signoff serve, {args.items:,} items ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="signoff-bench-footprint-") as tmp:
        reading, seed_s = measure_signoff(
            Path(tmp), items=args.items, settle=args.settle, pages=args.pages, gets=args.gets
        )
        readings.append(reading)
    _print(readings[-1])
    section = markdown(readings, seed_s, args, dt.datetime.now(dt.UTC).astimezone())
    print()
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS, SECTION, section)
        print(f"wrote the section {SECTION!r} of {BENCHMARKS}")
    errors = [f"{r.name} ({r.data}): {e}" for r in readings for e in r.errors]
    for e in errors[:10]:
        print(f"ERROR: {e}", file=sys.stderr)
    return 1 if errors else 0


def _print(r: Reading) -> None:
    print(
        f"  idle RSS {_mib(r.idle, 'VmRSS')} MiB (PSS {_mib(r.idle, 'Pss')}); after requests "
        f"RSS {_mib(r.after, 'VmRSS')} MiB (PSS {_mib(r.after, 'Pss')}); {r.requests}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
