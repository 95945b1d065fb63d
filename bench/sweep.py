"""The escalation sweep at scale: the due-step query and the sweep's memory, against a
database holding a million pending items.

Run from the repository root: ``make bench`` (``.venv/bin/python bench/sweep.py``).

Method
------
* **Databases.** For each size (``--baseline`` pending items, default 100,000, and
  ``--pending``, default 1,000,000) a fresh SQLite file is created in a temporary
  directory and brought to the current schema with ``storage.migrate.upgrade``. It is
  then seeded with SQLAlchemy Core ``executemany`` (chunks of ``CHUNK`` rows,
  ``COMMIT_EVERY`` rows per transaction): one API key, the pending items of the route
  ``bench`` (two nudges: after 30 min and after 7 days; one Slack channel; digests
  off, so every reminder is a nudge) and, for the ``--due`` items (default 1,000,
  spread evenly over the table), one Slack ``posts`` row each. The due items were
  posted 1 h ago or earlier and wait for their first nudge; all others got theirs and
  wait for the second one, due over the next 7 days. So at the benchmark's ``now``
  exactly ``--due`` items are due. Seeding time is reported but is not part of any
  figure. ``ANALYZE`` is not run on SQLite (signoff never runs it either).
* **Measuring process.** Each database is measured by a fresh Python process (this
  script again, with a hidden flag), so the seeding's memory does not blur the
  figures. It builds the real system (``bot.app.build``) with a frozen clock, the
  ``bench`` route and a null Slack surface that only counts calls.
* **Due-step query.** ``storage.steps.due_items(now=..., limit=200)`` (one sweep page)
  runs ``--repeat`` times (default 50), each in its own session, timed from opening the
  session to having the ORM rows; the first call (statement compiled, SQLite cache
  cold) is reported apart and also counts in p50/p99/max (nearest rank). Time spent in
  full (generation 2) garbage collections during a run is recorded (``gc.callbacks``),
  so outliers caused by them are told apart from the query. The SQL ``due_items``
  sends is captured and shown with ``EXPLAIN QUERY PLAN`` (PostgreSQL: ``EXPLAIN
  (ANALYZE, BUFFERS)``).
* **Sweep.** ``Sweeper.run_once(now=...)`` then claims and nudges every due item (pages
  of 200). Its wall time and the growth of the process's resident memory are measured
  (the peak is reset through ``/proc/self/clear_refs`` just before, then read from
  ``VmHWM``; where that cannot be reset, ``VmRSS`` is sampled every millisecond). The
  due items are then put back as they were (their ``next_step``/``step_due_at``
  restored, the step runs deleted) and the sweep runs again under ``tracemalloc`` for
  the peak of Python allocations (not timed: tracing slows it down).
* **Targets.** The due query stays under ``QUERY_TARGET_MS`` at ``--pending`` pending
  items (judged on the slowest of all runs, first call included), and the sweep's
  memory is flat in the number of pending items: the Python peak and the RSS growth at
  ``--pending`` are within ``MEMORY_TARGET`` times those at ``--baseline`` (the RSS
  growth with ``RSS_SLACK_MIB`` of slack, since a few MiB come and go with allocator
  arenas and SQLite's page cache).
* **PostgreSQL** (``--postgres DSN``, optional): a throwaway database
  ``bench_sweep_<pid>`` is created, seeded with ``--pending`` items the same way,
  ``ANALYZE``-d (autovacuum would do so in service), measured the same way, and
  dropped.

The results go to stdout and to the ``## Sweep (bench/sweep.py)`` section of
``BENCHMARKS.md`` (that section is replaced; other sections are kept). The exit status
is non-zero if the sweep did not nudge every due item once or a step failed; missing a
target alone does not fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import percentile, rss_peak, status_kib, write_section

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Sweep (bench/sweep.py)"
QUERY_TARGET_MS = 100.0
MEMORY_TARGET = 1.5
RSS_SLACK_MIB = 4.0
PAGE = 200  # the sweep's page size (Sweeper's default batch), used as the query's limit
CHUNK = 20_000  # rows per executemany
COMMIT_EVERY = 200_000  # rows per seeding transaction
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECOND_NUDGE = timedelta(days=7)
ROUTE: dict[str, Any] = {
    "surfaces": [{"type": "slack", "channel": "C1"}],
    "reviewers": {"slack": ["U1"]},
    "escalation": [{"after": "30m", "do": "nudge"}, {"after": "7d", "do": "nudge"}],
    "digest": {"threshold": 1_000_000},  # one nudge per item, never a digest
}
CONTENT = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane"}
MIB = 1024 * 1024


# -- null surface -------------------------------------------------------------------------


class NullSurface:
    """A surface that does nothing but count what it is asked to do."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: Counter[str] = Counter()

    async def post(self, *, card: Any, channel: str | None) -> Mapping[str, Any] | None:
        self.calls["post"] += 1
        return {"channel": channel, "ts": "1.0"}

    async def update(self, *, card: Any, ref: Mapping[str, Any]) -> None:
        self.calls["update"] += 1

    async def nudge(
        self,
        *,
        card: Any,
        ref: Mapping[str, Any],
        mentions: Sequence[str],
        text: str,
        key: str,
        check_first: bool = False,
    ) -> None:
        self.calls["nudge"] += 1

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[Any],
    ) -> None:
        self.calls["announce"] += 1


# -- seeding ------------------------------------------------------------------------------


def _item_id(i: int) -> str:
    return f"itm_bench_{i:010d}"


def _is_due(i: int, pending: int, due: int) -> bool:
    stride = pending // due
    return i % stride == 0 and i // stride < due


def _item_rows(start: int, stop: int, pending: int, due: int) -> list[dict[str, Any]]:
    span = int((SECOND_NUDGE - timedelta(minutes=31)).total_seconds())
    rows = []
    for i in range(start, stop):
        if _is_due(i, pending, due):
            # posted an hour ago or earlier, first nudge (30 min) overdue
            created = NOW - timedelta(hours=1, seconds=i // (pending // due))
            step, step_due = 0, created + timedelta(minutes=30)
        else:
            # posted 31 min to 7 days ago, first nudge done; the second one is still ahead
            created = NOW - SECOND_NUDGE + timedelta(seconds=1 + (i * 7919) % span)
            step, step_due = 1, created + SECOND_NUDGE
        rows.append(
            {
                "id": _item_id(i),
                "integrator_id": 1,
                "route": "bench",
                "kind": "email",
                "title": f"Refund {i}",
                "confidence": 0.5,
                "callback_url": None,
                "requested_by": None,
                "content": CONTENT,
                "final_content": None,
                "metadata": {},
                "state": "pending",
                "outcome": None,
                "release_state": "none",
                "release_error": None,
                "version": 1,
                "idempotency_key": None,
                "request_hash": None,
                "created_at": created,
                "updated_at": created,
                "decided_at": None,
                "due_at": None,
                "next_step": step,
                "step_due_at": step_due,
            }
        )
    return rows


async def seed(url: str, *, pending: int, due: int) -> float:
    """Create the schema at ``url`` and fill it; the seconds it took."""
    from sqlalchemy import text

    from storage.db import make_engine
    from storage.migrate import upgrade
    from storage.models import ApiKey, Item, Post

    started = time.perf_counter()
    engine = make_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(
                ApiKey.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "id": 1,
                        "name": "bench",
                        "key_digest": "0" * 64,
                        "signing_secret": "bench",
                        "created_at": NOW,
                    }
                ],
            )
        items = Item.__table__.insert()  # type: ignore[attr-defined]
        for first in range(0, pending, COMMIT_EVERY):
            async with engine.begin() as conn:
                for start in range(first, min(first + COMMIT_EVERY, pending), CHUNK):
                    stop = min(start + CHUNK, first + COMMIT_EVERY, pending)
                    await conn.execute(items, _item_rows(start, stop, pending, due))
            print(f"  seeded {min(first + COMMIT_EVERY, pending):,} items", flush=True)
        posts = [
            {
                "item_id": _item_id(i),
                "surface": "slack",
                "channel": "C1",
                "ref": {"channel": "C1", "ts": "1.0"},
                "posted_at": NOW - timedelta(hours=2),
            }
            for i in range(pending)
            if _is_due(i, pending, due)
        ]
        async with engine.begin() as conn:
            await conn.execute(Post.__table__.insert(), posts)  # type: ignore[attr-defined]
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    if engine.dialect.name == "sqlite":  # fold the WAL into the file, as after a restart
        assert engine.url.database
        with contextlib.closing(sqlite3.connect(engine.url.database)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


# -- measuring (child process) ------------------------------------------------------------


class FullGcTimer:
    """Milliseconds spent in full (generation 2) garbage collections since ``ms`` was
    last reset, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.ms = 0.0
        self._started: float | None = None
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.ms += (time.perf_counter() - self._started) * 1000
            self._started = None

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


async def measure(url: str, *, repeat: int, due: int) -> dict[str, Any]:
    """Everything measured on one seeded database (runs in its own process)."""
    from sqlalchemy import bindparam, delete, event, select, update

    from bot.app import build
    from bot.clock import FrozenClock
    from bot.routes import parse_routes
    from bot.settings import load_settings
    from storage import steps as step_store
    from storage.models import Item, StepRun

    slack = NullSurface("slack")
    system = build(
        load_settings({"SIGNOFF_DATABASE_URL": url}),
        clock=FrozenClock(NOW),
        routes=parse_routes({"routes": {"bench": ROUTE}}),
        surfaces={"web": NullSurface("web"), "slack": slack},
    )
    out: dict[str, Any] = {"dialect": system.engine.dialect.name}
    # As `signoff serve` does once started (bot/app.py): what start-up made leaves the
    # collector's full scans.
    gc.collect()
    gc.freeze()
    try:
        # the due-step query, timed
        captured: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if "step_due_at" in statement and statement.lstrip().upper().startswith("SELECT"):
                captured.append((statement, params))

        event.listen(system.engine.sync_engine, "before_cursor_execute", capture)
        full_gc = FullGcTimer()
        times, in_gc, found = [], [], 0
        for _ in range(repeat):
            full_gc.ms = 0.0
            started = time.perf_counter()
            async with system.sessions() as session:
                rows = await step_store.due_items(session, now=NOW, limit=PAGE)
            times.append((time.perf_counter() - started) * 1000)
            in_gc.append(full_gc.ms)
            found = len(rows)
            del rows
        full_gc.close()
        event.remove(system.engine.sync_engine, "before_cursor_execute", capture)
        out["query_ms"] = times
        out["query_full_gc_ms"] = in_gc
        out["query_rows"] = found
        statement, params = captured[0]
        out["sql"] = " ".join(statement.split())
        async with system.engine.connect() as conn:
            if out["dialect"] == "sqlite":
                plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                out["plan"] = [str(row[-1]) for row in plan]
            else:
                plan = await conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + statement, params
                )
                out["plan"] = [str(row[0]) for row in plan]

        # the due items as they are, to put them back after the first sweep
        async with system.engine.connect() as conn:
            before = (
                await conn.execute(
                    select(Item.id, Item.next_step, Item.step_due_at).where(  # type: ignore[call-overload]
                        Item.state == "pending", Item.step_due_at <= NOW
                    )
                )
            ).all()
        out["due_in_db"] = len(before)

        # the sweep: wall time and RSS
        with rss_peak() as rss:
            started = time.perf_counter()
            report = await system.sweeper.run_once(now=NOW)
            out["sweep_s"] = time.perf_counter() - started
        out["rss"] = rss
        out["report"] = {
            "nudged": report.nudged,
            "digests": report.digests,
            "failed": report.failed,
            "skipped": report.skipped,
            "fired": report.fired,
        }
        out["surface_calls"] = dict(slack.calls)

        # put the due items back, then the sweep again under tracemalloc
        table = Item.__table__  # type: ignore[attr-defined]
        async with system.engine.begin() as conn:
            await conn.execute(delete(StepRun))
            await conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(next_step=bindparam("b_step"), step_due_at=bindparam("b_due")),
                [{"b_id": i, "b_step": s, "b_due": d} for i, s, d in before],
            )
        del before
        gc.collect()
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
        again = await system.sweeper.run_once(now=NOW)
        out["py_peak"] = tracemalloc.get_traced_memory()[1] - traced_before
        tracemalloc.stop()
        out["again_nudged"] = again.nudged
        out["hwm_kib"] = status_kib("VmHWM")
    finally:
        await system.close()
    return out


# -- orchestration ------------------------------------------------------------------------


@dataclass
class Run:
    """One seeded database and what was measured on it."""

    label: str  # SQLite | PostgreSQL
    pending: int
    due: int
    seed_s: float
    db_mib: float | None
    m: dict[str, Any]

    @property
    def query_ms(self) -> list[float]:
        return list(self.m["query_ms"])

    @property
    def query_max(self) -> float:
        return max(self.query_ms)

    @property
    def gc_runs(self) -> list[tuple[float, float]]:
        """(run ms, of which in full garbage collections) of the runs that had one."""
        pairs = zip(self.query_ms, self.m["query_full_gc_ms"], strict=True)
        return [(ms, gc_ms) for ms, gc_ms in pairs if gc_ms > 0]

    @property
    def query_max_without_gc(self) -> float:
        pairs = zip(self.query_ms, self.m["query_full_gc_ms"], strict=True)
        return max((ms for ms, gc_ms in pairs if gc_ms == 0), default=float("nan"))

    def gc_cell(self) -> str:
        runs = self.gc_runs
        if not runs:
            return "0"
        return f"{len(runs)} ({', '.join(f'{g:.0f} of {ms:.0f} ms' for ms, g in runs)})"

    @property
    def rss_growth_mib(self) -> float:
        rss = self.m["rss"]
        return (rss["peak"] - rss["before"]) / 1024

    @property
    def py_peak_mib(self) -> float:
        return float(self.m["py_peak"]) / MIB

    @property
    def uses_index(self) -> bool:
        return any("ix_items_step_due" in line for line in self.m["plan"])

    def problems(self) -> list[str]:
        out = []
        r, calls = self.m["report"], self.m["surface_calls"]
        tag = f"{self.label} {self.pending:,}"
        if self.m["due_in_db"] != self.due:
            out.append(f"{tag}: {self.m['due_in_db']} items due in the database, not {self.due}")
        if r["nudged"] != self.due or calls.get("nudge", 0) != self.due:
            out.append(f"{tag}: nudged {r['nudged']} ({calls}) of {self.due} due items")
        if self.m["again_nudged"] != self.due:
            out.append(f"{tag}: the traced sweep nudged {self.m['again_nudged']} of {self.due}")
        if r["failed"] or r["digests"]:
            out.append(f"{tag}: {r['failed']} failed steps, {r['digests']} digests")
        if self.m["query_rows"] != min(PAGE, self.due):
            out.append(f"{tag}: due_items returned {self.m['query_rows']} rows")
        return out


def measure_in_child(url: str, *, repeat: int, due: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            url,
            "--repeat",
            str(repeat),
            "--due",
            str(due),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_sqlite(workdir: Path, *, pending: int, due: int, repeat: int) -> Run:
    path = workdir / f"sweep-{pending}.db"
    url = f"sqlite+aiosqlite:///{path}"
    print(f"SQLite, {pending:,} pending items ({due:,} due): seeding ...", flush=True)
    seed_s = asyncio.run(seed(url, pending=pending, due=due))
    size = sum(p.stat().st_size for p in workdir.glob(f"{path.name}*")) / MIB
    print(f"  seeded in {seed_s:.1f} s ({size:,.0f} MiB); measuring ...", flush=True)
    run = Run("SQLite", pending, due, seed_s, size, measure_in_child(url, repeat=repeat, due=due))
    _print_run(run)
    path.unlink()
    return run


async def _pg_admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_postgres(dsn: str, *, pending: int, due: int, repeat: int) -> Run:
    name = f"bench_sweep_{os.getpid()}"
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    asyncio.run(_pg_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        print(f"PostgreSQL, {pending:,} pending items ({due:,} due): seeding ...", flush=True)
        seed_s = asyncio.run(seed(url, pending=pending, due=due))
        print(f"  seeded in {seed_s:.1f} s; measuring ...", flush=True)
        run = Run(
            "PostgreSQL", pending, due, seed_s, None, measure_in_child(url, repeat=repeat, due=due)
        )
    finally:
        asyncio.run(_pg_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _print_run(run)
    return run


def _print_run(run: Run) -> None:
    q, ordered = run.query_ms, sorted(run.query_ms)
    print(
        f"  due query: first {q[0]:.2f} ms, p50 {percentile(ordered, 50):.2f}, "
        f"p99 {percentile(ordered, 99):.2f}, max {max(q):.2f} ms; full GCs: {run.gc_cell()}; "
        f"index used: {run.uses_index}\n"
        f"  sweep: {run.m['sweep_s']:.2f} s for {run.m['report']['nudged']} nudges; "
        f"Python peak {run.py_peak_mib:.2f} MiB; RSS growth {run.rss_growth_mib:.2f} MiB",
        flush=True,
    )


# -- report -------------------------------------------------------------------------------


@dataclass
class Report:
    sqlite: list[Run]  # baseline, then --pending
    postgres: Run | None
    args: argparse.Namespace
    when: dt.datetime

    @property
    def small(self) -> Run:
        return self.sqlite[0]

    @property
    def big(self) -> Run:
        return self.sqlite[-1]

    @property
    def query_passed(self) -> bool:
        return self.big.query_max < QUERY_TARGET_MS and self.big.uses_index

    @property
    def py_ratio(self) -> float:
        return self.big.py_peak_mib / self.small.py_peak_mib

    @property
    def rss_ratio(self) -> float:
        small = max(self.small.rss_growth_mib, 0.01)
        return self.big.rss_growth_mib / small

    @property
    def rss_flat(self) -> bool:
        return self.big.rss_growth_mib <= self.small.rss_growth_mib * MEMORY_TARGET + RSS_SLACK_MIB

    @property
    def memory_passed(self) -> bool:
        return self.py_ratio <= MEMORY_TARGET and self.rss_flat

    def markdown(self) -> str:
        runs = [*self.sqlite, *([self.postgres] if self.postgres else [])]
        query = [
            "| database | pending items | due | first call ms | p50 ms | p99 ms | max ms "
            "| runs with a full GC (GC ms of run ms) | max ms of the others | rows "
            "| index `ix_items_step_due` |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
        ]
        for r in runs:
            q, ordered = r.query_ms, sorted(r.query_ms)
            query.append(
                f"| {r.label} | {r.pending:,} | {r.due:,} | {q[0]:.2f} "
                f"| {percentile(ordered, 50):.2f} | {percentile(ordered, 99):.2f} | {max(q):.2f} "
                f"| {r.gc_cell()} | {r.query_max_without_gc:.2f} "
                f"| {r.m['query_rows']} | {'yes' if r.uses_index else '**no**'} |"
            )
        sweep = [
            "| database | pending items | due | nudges | sweep s | items/s "
            "| Python peak MiB | RSS growth MiB | process peak RSS MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in runs:
            s = r.m["sweep_s"]
            hwm = r.m.get("hwm_kib")
            sweep.append(
                f"| {r.label} | {r.pending:,} | {r.due:,} | {r.m['report']['nudged']:,} "
                f"| {s:.2f} | {r.due / s:,.0f} | {r.py_peak_mib:.2f} "
                f"| {r.rss_growth_mib:.2f} | {'n/a' if hwm is None else f'{hwm / 1024:,.0f}'} |"
            )
        q_verdict = "PASS" if self.query_passed else "FAIL"
        m_verdict = "PASS" if self.memory_passed else "FAIL"
        a = self.args
        big, small = self.big, self.small
        plans = [
            f"{r.label} ({r.pending:,} pending items), "
            f"{'`EXPLAIN QUERY PLAN`' if r.label == 'SQLite' else '`EXPLAIN (ANALYZE, BUFFERS)`'}"
            " of the statement `due_items` sends:\n\n```text\n" + "\n".join(r.m["plan"]) + "\n```"
            for r in ([big, self.postgres] if self.postgres else [big])
        ]
        seeding = "; ".join(
            f"{r.label} {r.pending:,}: {r.seed_s:.1f} s"
            + (f", {r.db_mib:,.0f} MiB" if r.db_mib is not None else "")
            for r in runs
        )
        lines = [
            SECTION,
            "",
            f"Finding the due steps: `storage.steps.due_items(now, limit={PAGE})` (one sweep "
            f"page), {a.repeat} runs per database, each in its own session, timed from opening "
            "the session to holding the ORM rows; p50/p99/max over all runs, first call "
            "included:",
            "",
            *query,
            "",
            "The slow outliers are the runs in which Python ran a full (generation 2) garbage "
            "collection, which walks every object of the process (imports included) whatever "
            "the query; the other runs show what the query and building its rows cost.",
            "",
            "One sweep: `Sweeper.run_once(now)` claiming and nudging every due item (pages of "
            f"{PAGE}, one Slack post each, a null surface that only counts). Python peak = "
            "tracemalloc peak over a second, identical sweep; RSS growth = peak resident "
            "memory during the sweep minus resident memory just before it; items/s = due "
            "items nudged per second of the whole sweep (claim, post, record):",
            "",
            *sweep,
            "",
            f"{big.due:,} due of {big.pending:,} pending is a backlog: with steps spread over "
            "7 days, about "
            f"{big.pending * 30 / SECOND_NUDGE.total_seconds():,.0f} items fall due between "
            "two sweeps 30 s apart (the default interval), so one sweep of this size stands for "
            f"about {big.due / (big.pending * 30 / SECOND_NUDGE.total_seconds()) / 2:,.0f} "
            "minutes of a stopped scheduler.",
            "",
            f"- **Due query under {QUERY_TARGET_MS:.0f} ms at {big.pending:,} pending items** "
            f"(SQLite, slowest of {a.repeat} runs, on the index): {big.query_max:.2f} ms: "
            f"**{q_verdict}**",
            f"- **Sweep memory flat in the number of pending items** ({big.due:,} due; at "
            f"{big.pending:,} within {MEMORY_TARGET:g}x of {small.pending:,}, RSS with "
            f"{RSS_SLACK_MIB:g} MiB of slack): Python peak {big.py_peak_mib:.2f} vs "
            f"{small.py_peak_mib:.2f} MiB ({self.py_ratio:.2f}x), RSS growth "
            f"{big.rss_growth_mib:.2f} vs {small.rss_growth_mib:.2f} MiB: **{m_verdict}**",
            "",
            *[p + "\n" for p in plans],
            f"- Date: {self.when:%Y-%m-%d %H:%M %Z}",
            f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}, SQLite {_sqlite_version()}",
            "- Data: fresh databases at the current schema; pending items of one route "
            "(nudges after 30 min and 7 days, digests off), the due ones spread evenly over "
            "the table, each with one Slack post, all others waiting for a step due in the "
            "next 7 days; SQLite in WAL mode (synchronous=NORMAL) as signoff runs it, no "
            "`ANALYZE`" + ("; PostgreSQL `ANALYZE`-d after seeding" if self.postgres else ""),
            f"- Seeding (not in the figures): {seeding}",
            f"- Each database measured by a fresh process; RSS peak from {big.m['rss']['method']}",
            "",
            "Reproduce with `make bench` (flags: `.venv/bin/python bench/sweep.py --help`"
            + (f"; this run: `{_command(a)}`" if _command(a) != "bench/sweep.py" else "")
            + ").",
        ]
        return "\n".join(lines) + "\n"


def _sqlite_version() -> str:
    return sqlite3.sqlite_version


def _command(a: argparse.Namespace) -> str:
    parts = ["bench/sweep.py"]
    if a.pending != 1_000_000:
        parts.append(f"--pending {a.pending}")
    if a.baseline != 100_000:
        parts.append(f"--baseline {a.baseline}")
    if a.due != 1_000:
        parts.append(f"--due {a.due}")
    if a.repeat != 50:
        parts.append(f"--repeat {a.repeat}")
    if a.postgres:
        parts.append(f"--postgres {a.postgres}")
    return " ".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--pending", type=int, default=None, help="pending items in the big database (1000000)"
    )
    parser.add_argument(
        "--baseline",
        type=int,
        default=None,
        help="pending items in the small database the sweep's memory is compared with (100000)",
    )
    parser.add_argument(
        "--due", type=int, default=None, help="items whose step is due, in each database (1000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs of the due-step query per database (50)"
    )
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        help="also measure on PostgreSQL, in a throwaway database created with this admin DSN "
        "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20000 pending, 2000 baseline, 200 due, 10 runs; implies --no-write",
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS.name} alone"
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = (20_000, 2_000, 200, 10) if args.quick else (1_000_000, 100_000, 1_000, 50)
    for name, value in zip(("pending", "baseline", "due", "repeat"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.no_write = True
    if args.repeat < 1 or args.due < 1:
        parser.error("--repeat and --due must be at least 1")
    if not args.child and not args.due <= args.baseline < args.pending:
        parser.error("need --due <= --baseline < --pending")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = asyncio.run(measure(args.child, repeat=args.repeat, due=args.due))
        print(json.dumps(result, default=str))
        return 0
    # SIGTERM unwinds like Ctrl-C, so the temporary files (and a PostgreSQL database) go
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="signoff-bench-sweep-") as tmp:
        runs = [
            run_sqlite(Path(tmp), pending=n, due=args.due, repeat=args.repeat)
            for n in (args.baseline, args.pending)
        ]
    pg = (
        run_postgres(args.postgres, pending=args.pending, due=args.due, repeat=args.repeat)
        if args.postgres
        else None
    )
    report = Report(sqlite=runs, postgres=pg, args=args, when=dt.datetime.now(dt.UTC).astimezone())
    section = report.markdown()
    print()
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS, SECTION, section)
        print(f"wrote the section {SECTION!r} of {BENCHMARKS}")
    problems = [p for r in [*runs, *([pg] if pg else [])] for p in r.problems()]
    for p in problems:
        print(f"ERROR: {p}", file=sys.stderr)
    print(
        f"due query at {report.big.pending:,}: max {report.big.query_max:.2f} ms "
        f"(target < {QUERY_TARGET_MS:.0f} ms): {'PASS' if report.query_passed else 'FAIL'}; "
        f"sweep memory flat: {'PASS' if report.memory_passed else 'FAIL'} "
        f"(Python peak {report.py_ratio:.2f}x, RSS growth {report.rss_ratio:.2f}x)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
