"""Training exports at scale: rows per second and memory of streaming a DPO and an SFT
export out of a database holding a million decided items.

Run from the repository root: ``make bench`` (``.venv/bin/python bench/export.py``).

Method
------
* **Databases.** For each size (``--baseline`` decided items, default 100,000, and
  ``--items``, default 1,000,000) a fresh SQLite file is created in a temporary
  directory and brought to the current schema with ``storage.migrate.upgrade``. It is
  then seeded through the driver's bulk path (``executemany`` of plain tuples; ``COPY``
  on PostgreSQL), values encoded as SQLAlchemy stores them (chunks of ``CHUNK`` rows,
  ``COMMIT_EVERY`` rows per transaction): one API key and the items of the route
  ``bench``, each with its decisive decision. Every item carries a chat prompt (a system
  and a user message). Of every ten items, eight were edited by a reviewer (the edit
  decision holds the version before and after; kinds alternate between ``message`` and
  ``email``), one was approved as submitted, and one is a comparison (content
  ``{prompt, a, b}``) whose decision chose ``a`` or ``b``. So the DPO export has a row
  for 9 items in 10 (the edits and the comparisons) and the SFT export too (the edits
  and the approvals). Seeding time is reported but is not part of any figure.
* **Measuring process.** Each database is measured by a fresh Python process (this
  script again, with a hidden flag), so the seeding's memory does not blur the figures.
  It opens the database as ``signoff export`` does (``storage.db.make_engine``) and, per
  format, runs ``bot.export.write_export`` (the code behind ``signoff export FORMAT -o
  FILE``: keyset pages of ``bot.export.PAGE`` rows read one after the other on one
  connection, each in a short transaction of its own, the next page read while one is
  encoded, written in chunks of ``bot.export.CHUNK_BYTES``) into a file in the
  temporary directory, ``--repeat`` times (default 3). The wall time of each run gives
  its rows/s (the median run is the figure; the machine is a shared VM where single runs
  vary), and the process's CPU time (all threads) its rows per CPU second. The growth of
  the process's resident memory during each run is measured (the peak is reset through
  ``/proc/self/clear_refs`` just before, then read from ``VmHWM``; where that cannot be
  reset, ``VmRSS`` is sampled every millisecond); the largest counts. The same export
  then runs once more under ``tracemalloc`` for the peak of Python allocations (not
  timed: tracing slows it down). The written file is checked: its line count equals the
  rows reported, and the first and last lines parse as JSON with the format's fields.
* **Targets.** At ``--items`` items each export streams at least ``RATE_TARGET`` rows/s
  (SQLite, median run), and memory is flat in the number of items: the Python peak and the RSS
  growth at ``--items`` are within ``MEMORY_TARGET`` times those at ``--baseline`` (the
  RSS growth with ``RSS_SLACK_MIB`` of slack, since a few MiB come and go with allocator
  arenas and SQLite's page cache).
* **PostgreSQL** (``--postgres DSN``, optional): a throwaway database
  ``bench_export_<pid>`` is created, seeded with ``--items`` items the same way,
  ``ANALYZE``-d (autovacuum would do so in service), measured the same way, and dropped.
  Its rows/s are judged against ``RATE_TARGET`` too, and the CPU time of the database
  server's backends (read from ``/proc``: the server runs on this machine) is reported
  beside the exporter's, with what other processes used meanwhile.

The results go to stdout and to the ``## Export (bench/export.py)`` section of
``BENCHMARKS.md`` (that section is replaced; other sections are kept). The exit status
is non-zero if an export wrote a wrong number of rows or a malformed line; missing a
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
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import machine_busy, proc_cpu, rss_peak, status_kib, write_section

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Export (bench/export.py)"
RATE_TARGET = 50_000.0
MEMORY_TARGET = 1.5
RSS_SLACK_MIB = 4.0
FORMATS = ("dpo", "sft")
FIELDS = {
    "dpo": {"input", "preferred_output", "non_preferred_output"},
    "sft": {"messages"},
}
CHUNK = 20_000  # rows per executemany
COMMIT_EVERY = 200_000  # rows per seeding transaction
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MIB = 1024 * 1024

SYSTEM = "You are the support assistant of Example Shop. Be brief, friendly and exact."
BODY = (
    "Hi {name},\n\nthank you for your patience. We have refunded order {n} in full; the "
    "money should reach your account within three to five working days.\n\nBest,\nSupport"
)


# -- seeding ------------------------------------------------------------------------------


def _item_id(i: int) -> str:
    return f"itm_bench_{i:010d}"


def _rows(start: int, stop: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The items ``start``..``stop`` and their decisions."""
    items, decisions = [], []
    for i in range(start, stop):
        at = NOW - timedelta(seconds=stop - i)
        prompt = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Customer {i} asks where the refund of order {i} is."},
        ]
        slot = i % 10
        before: dict[str, Any] | None = None
        after: dict[str, Any] | None = None
        choice = None
        if slot == 9:  # a comparison, decided a or b
            kind, action = "comparison", "approve"
            content = {
                "prompt": prompt[1]["content"],
                "a": BODY.format(name="Jane", n=i),
                "b": BODY.format(name="Jane", n=i).replace("in full", "partly"),
            }
            final = content
            choice = "a" if i % 20 == 9 else "b"
        elif i % 2:
            kind = "message"
            content = {"text": BODY.format(name="Jane", n=i)}
            final = {"text": BODY.format(name="Jane Doe", n=i)} if slot < 8 else content
        else:
            kind = "email"
            content = {
                "to": [f"customer{i}@example.com"],
                "cc": [],
                "subject": f"Your refund for order {i}",
                "body": BODY.format(name="Jane", n=i),
                "html": None,
            }
            final = {**content, "body": BODY.format(name="Jane Doe", n=i)} if slot < 8 else content
        if kind != "comparison" and slot < 8:
            action, before, after, outcome = "edit", content, final, "edited"
        else:
            action, outcome = "approve", "approved"
        items.append(
            {
                "id": _item_id(i),
                "integrator_id": 1,
                "route": "bench",
                "kind": kind,
                "title": f"Refund {i}",
                "confidence": 0.5,
                "content": content,
                "final_content": final,
                "metadata": {},
                "prompt": prompt,
                # as the service writes it: JSON null, not SQL NULL (no redrafts)
                "revisions": None,
                "state": "approved",
                "outcome": outcome,
                "release_state": "none",
                "version": 2,
                "created_at": at - timedelta(minutes=5),
                "updated_at": at,
                "decided_at": at,
            }
        )
        decisions.append(
            {
                "item_id": _item_id(i),
                "action": action,
                "surface": "web",
                "actor_id": "lead",
                "actor_name": "Lead",
                "content_before": before,
                "content_after": after,
                "decisive": True,
                "at": at,
                "since_posted_seconds": 300.0,
                "choice": choice,
            }
        )
    return items, decisions


def expected_rows(items: int) -> dict[str, int]:
    """Rows each format must give for ``items`` seeded items."""
    comparisons = sum(1 for i in range(items) if i % 10 == 9)
    approved = sum(1 for i in range(items) if i % 10 == 8)
    edited = items - comparisons - approved
    return {"dpo": edited + comparisons, "sft": edited + approved}


async def seed(url: str, *, items: int) -> float:
    """Create the schema at ``url`` and fill it; the seconds it took."""
    from sqlalchemy import text

    from storage.db import make_engine
    from storage.migrate import upgrade
    from storage.models import ApiKey, Decision, Item

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
                        "signing_secret": "b",
                        "created_at": NOW,
                    }
                ],
            )
        tables = (Item.__table__, Decision.__table__)  # type: ignore[attr-defined]
        for first in range(0, items, COMMIT_EVERY):
            async with engine.begin() as conn:
                for start in range(first, min(first + COMMIT_EVERY, items), CHUNK):
                    stop = min(start + CHUNK, first + COMMIT_EVERY, items)
                    for table, rows in zip(tables, _rows(start, stop), strict=True):
                        await _bulk_insert(conn, table, rows)
            print(f"  seeded {min(first + COMMIT_EVERY, items):,} items", flush=True)
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


async def _bulk_insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """``rows`` (dicts with the same keys) into ``table`` by the driver's own bulk path:
    ``COPY`` on PostgreSQL, ``executemany`` of plain tuples on SQLite. Values are stored
    as SQLAlchemy would store them (JSON as ``json.dumps`` text, SQL NULL never for a
    JSON None, UTC timestamps, the columns' scalar defaults), without its per-row work,
    which was most of the seeding time."""
    from sqlalchemy import JSON, Boolean

    from storage.types import UTCDateTime

    postgres = conn.dialect.name == "postgresql"
    names = list(rows[0])
    defaults = {}
    for column in table.columns:
        if column.name in names or column.default is None:
            continue
        if not column.default.is_scalar:
            raise RuntimeError(f"{table.name}.{column.name}: a default the bench cannot copy")
        defaults[column.name] = column.default.arg
    columns = [*names, *defaults]

    def encoder(name: str) -> Any:
        kind = table.columns[name].type
        if isinstance(kind, JSON):
            return json.dumps
        if isinstance(kind, UTCDateTime):
            if postgres:
                return lambda v: None if v is None else v.astimezone(UTC)
            return lambda v: None if v is None else f"{v.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"
        if isinstance(kind, Boolean) and not postgres:
            return lambda v: None if v is None else int(v)
        return None

    encoders = [encoder(name) for name in columns]
    records = []
    for row in rows:
        values = [row[name] for name in names] + list(defaults.values())
        records.append(
            tuple(v if e is None else e(v) for v, e in zip(values, encoders, strict=True))
        )
    raw = (await conn.get_raw_connection()).driver_connection
    if postgres:
        await raw.copy_records_to_table(table.name, records=records, columns=columns)
    else:
        marks = ", ".join("?" * len(columns))
        quoted = ", ".join(f'"{name}"' for name in columns)
        await raw.executemany(f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})", records)


# -- measuring (child process) ------------------------------------------------------------


def _check_file(path: Path, fmt: str) -> dict[str, Any]:
    """Lines in the file, and whether its first and last lines are rows of ``fmt``."""
    lines, first, last = 0, b"", b""
    with path.open("rb") as f:
        for line in f:
            if not first:
                first = line
            last = line
            lines += 1
    ok = all(
        line.endswith(b"\n") and set(json.loads(line)) == FIELDS[fmt] for line in (first, last)
    )
    return {"lines": lines, "well_formed": ok, "bytes": path.stat().st_size}


async def measure(url: str, *, workdir: Path, repeat: int) -> dict[str, Any]:
    """Both exports of one seeded database, timed and traced (in its own process)."""
    from bot.export import CHUNK_BYTES, PAGE, ExportFormat, write_export
    from storage.db import make_engine, session_factory

    engine = make_engine(url)
    sessions = session_factory(engine)
    out: dict[str, Any] = {"dialect": engine.dialect.name, "page": PAGE, "chunk": CHUNK_BYTES}
    try:
        for fmt in FORMATS:
            path = workdir / f"export-{os.getpid()}.{fmt}.jsonl"
            result: dict[str, Any] = {
                "seconds": [],
                "cpu": [],
                "rows_per_run": [],
                "rss": [],
                "server_cpu": [],
                "machine_cpu": [],
            }
            for _ in range(repeat):
                server = await _server_cpu(engine)
                machine = machine_busy()
                with rss_peak() as rss, path.open("wb") as f:
                    started, cpu = time.perf_counter(), time.process_time()
                    stats = await write_export(sessions, fmt=ExportFormat(fmt), out=f)
                    result["seconds"].append(time.perf_counter() - started)
                    result["cpu"].append(time.process_time() - cpu)
                after = await _server_cpu(engine)
                result["server_cpu"].append(
                    None
                    if server is None or after is None
                    else sum(t - server.get(pid, 0.0) for pid, t in after.items())
                )
                result["machine_cpu"].append(machine_busy() - machine)
                result["rows_per_run"].append(stats.rows)
                result["rss"].append(rss)
                result.update(rows=stats.rows, skipped=stats.skipped, **_check_file(path, fmt))
                path.unlink()
            gc.collect()
            tracemalloc.start()
            traced_before = tracemalloc.get_traced_memory()[0]
            with path.open("wb") as f:
                again = await write_export(sessions, fmt=ExportFormat(fmt), out=f)
            result["py_peak"] = tracemalloc.get_traced_memory()[1] - traced_before
            tracemalloc.stop()
            result["again_rows"] = again.rows
            path.unlink()
            out[fmt] = result
        out["hwm_kib"] = status_kib("VmHWM")
    finally:
        await engine.dispose()
    return out


async def _server_cpu(engine: Any) -> dict[int, float] | None:
    """CPU seconds used so far by each PostgreSQL backend of the bench database (the
    server is on this machine); None on SQLite, whose work is in this process."""
    if engine.dialect.name != "postgresql":
        return None
    async with engine.connect() as conn:
        pids = await conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        return {pid: t for (pid,) in pids if (t := proc_cpu(pid)) is not None}


@dataclass
class Run:
    """One seeded database and what was measured on it."""

    label: str  # SQLite | PostgreSQL
    items: int
    seed_s: float
    db_mib: float | None
    m: dict[str, Any]

    def rates(self, fmt: str) -> list[float]:
        """rows/s of each timed run."""
        return [self.m[fmt]["rows"] / s for s in self.m[fmt]["seconds"]]

    def rate(self, fmt: str) -> float:
        """rows/s of the median run."""
        return statistics.median(self.rates(fmt))

    def cpu_rate(self, fmt: str) -> float:
        """rows per CPU second of the process (all threads), median over the runs: what
        the export costs, whatever else the machine is doing."""
        return statistics.median(self.m[fmt]["rows"] / c for c in self.m[fmt]["cpu"])

    def median_run(self, fmt: str) -> int:
        """Index of the run whose rows/s is the median (the lower middle one)."""
        order = sorted(range(len(self.m[fmt]["seconds"])), key=lambda i: self.m[fmt]["seconds"][i])
        return order[(len(order) - 1) // 2]

    def cpu_split(self, fmt: str) -> str:
        """Where the median run's wall time went, in CPU seconds: exporter, database
        server, other processes."""
        i = self.median_run(fmt)
        m = self.m[fmt]
        wall, mine, server = m["seconds"][i], m["cpu"][i], m["server_cpu"][i]
        if server is None:
            return f"{wall:.1f} s wall, exporter {mine:.1f} s CPU"
        other = max(0.0, m["machine_cpu"][i] - mine - server)
        return (
            f"{wall:.1f} s wall: exporter {mine:.1f} s CPU, PostgreSQL {server:.1f} s CPU, "
            f"anything else {other:.1f} s CPU"
        )

    def py_peak_mib(self, fmt: str) -> float:
        return float(self.m[fmt]["py_peak"]) / MIB

    def rss_growth_mib(self, fmt: str) -> float:
        """The largest growth over the timed runs."""
        return max(float(r["peak"] - r["before"]) / 1024 for r in self.m[fmt]["rss"])

    def problems(self) -> list[str]:
        out = []
        want = expected_rows(self.items)
        for fmt in FORMATS:
            r = self.m[fmt]
            tag = f"{self.label} {self.items:,} {fmt}"
            if {*r["rows_per_run"], r["again_rows"], r["lines"]} != {want[fmt]}:
                out.append(
                    f"{tag}: {r['rows_per_run']} rows reported, {r['again_rows']} on the traced "
                    f"run, {r['lines']} lines written; expected {want[fmt]}"
                )
            if not r["well_formed"]:
                out.append(f"{tag}: a malformed line")
            if r["skipped"]:
                out.append(f"{tag}: {r['skipped']} rows left out")
        return out


def measure_in_child(url: str, workdir: Path, repeat: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            *("--child", url, "--workdir", str(workdir), "--repeat", str(repeat)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_sqlite(workdir: Path, *, items: int, repeat: int) -> Run:
    path = workdir / f"export-{items}.db"
    url = f"sqlite+aiosqlite:///{path}"
    print(f"SQLite, {items:,} decided items: seeding ...", flush=True)
    seed_s = asyncio.run(seed(url, items=items))
    size = sum(p.stat().st_size for p in workdir.glob(f"{path.name}*")) / MIB
    print(f"  seeded in {seed_s:.1f} s ({size:,.0f} MiB); measuring ...", flush=True)
    run = Run("SQLite", items, seed_s, size, measure_in_child(url, workdir, repeat))
    _print_run(run)
    for p in workdir.glob(f"{path.name}*"):
        p.unlink()
    return run


async def _pg_admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_postgres(dsn: str, workdir: Path, *, items: int, repeat: int) -> Run:
    name = f"bench_export_{os.getpid()}"
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    asyncio.run(_pg_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        print(f"PostgreSQL, {items:,} decided items: seeding ...", flush=True)
        seed_s = asyncio.run(seed(url, items=items))
        print(f"  seeded in {seed_s:.1f} s; measuring ...", flush=True)
        run = Run("PostgreSQL", items, seed_s, None, measure_in_child(url, workdir, repeat))
    finally:
        asyncio.run(_pg_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _print_run(run)
    return run


def _print_run(run: Run) -> None:
    for fmt in FORMATS:
        r = run.m[fmt]
        per_run = " / ".join(f"{x:,.0f}" for x in run.rates(fmt))
        print(
            f"  {fmt}: {r['rows']:,} rows, {per_run} rows/s ({run.cpu_rate(fmt):,.0f} per CPU s); "
            f"Python peak {run.py_peak_mib(fmt):.2f} MiB; "
            f"RSS growth {run.rss_growth_mib(fmt):.2f} MiB",
            flush=True,
        )


# -- report -------------------------------------------------------------------------------


@dataclass
class Report:
    sqlite: list[Run]  # baseline, then --items
    postgres: Run | None
    args: argparse.Namespace
    when: dt.datetime

    @property
    def small(self) -> Run:
        return self.sqlite[0]

    @property
    def big(self) -> Run:
        return self.sqlite[-1]

    def rate_passed(self, fmt: str) -> bool:
        return self.big.rate(fmt) >= RATE_TARGET

    def py_ratio(self, fmt: str) -> float:
        return self.big.py_peak_mib(fmt) / self.small.py_peak_mib(fmt)

    def rss_flat(self, fmt: str) -> bool:
        small, big = self.small.rss_growth_mib(fmt), self.big.rss_growth_mib(fmt)
        return big <= small * MEMORY_TARGET + RSS_SLACK_MIB

    def memory_passed(self, fmt: str) -> bool:
        return self.py_ratio(fmt) <= MEMORY_TARGET and self.rss_flat(fmt)

    @property
    def passed(self) -> bool:
        return all(self.rate_passed(f) and self.memory_passed(f) for f in FORMATS)

    def markdown(self) -> str:
        runs = [*self.sqlite, *([self.postgres] if self.postgres else [])]
        table = [
            "| database | decided items | format | rows | MiB written | rows/s (median) "
            "| rows/s per run | rows per CPU second | Python peak MiB | RSS growth MiB |",
            "| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for r in runs:
            for fmt in FORMATS:
                m = r.m[fmt]
                table.append(
                    f"| {r.label} | {r.items:,} | {fmt} | {m['rows']:,} | {m['bytes'] / MIB:,.0f} "
                    f"| {r.rate(fmt):,.0f} | {' / '.join(f'{x:,.0f}' for x in r.rates(fmt))} "
                    f"| {r.cpu_rate(fmt):,.0f} | {r.py_peak_mib(fmt):.2f} "
                    f"| {r.rss_growth_mib(fmt):.2f} |"
                )
        big, small = self.big, self.small
        verdicts = []
        for fmt in FORMATS:
            rate = "PASS" if self.rate_passed(fmt) else "FAIL"
            memory = "PASS" if self.memory_passed(fmt) else "FAIL"
            verdicts += [
                f"- **{fmt}: at least {RATE_TARGET:,.0f} rows/s at {big.items:,} items** "
                f"(SQLite): {big.rate(fmt):,.0f} rows/s: **{rate}**",
                f"- **{fmt}: memory flat in the number of items** (at {big.items:,} within "
                f"{MEMORY_TARGET:g}x of {small.items:,}, RSS with {RSS_SLACK_MIB:g} MiB of "
                f"slack): Python peak {big.py_peak_mib(fmt):.2f} vs "
                f"{small.py_peak_mib(fmt):.2f} MiB ({self.py_ratio(fmt):.2f}x), RSS growth "
                f"{big.rss_growth_mib(fmt):.2f} vs {small.rss_growth_mib(fmt):.2f} MiB: "
                f"**{memory}**",
            ]
        seeding = "; ".join(
            f"{r.label} {r.items:,}: {r.seed_s:.1f} s"
            + (f", {r.db_mib:,.0f} MiB" if r.db_mib is not None else "")
            for r in runs
        )
        hwm = big.m.get("hwm_kib")
        lines = [
            SECTION,
            "",
            "Streaming an export into a file with `bot.export.write_export` (what `signoff "
            "export FORMAT -o FILE` runs): keyset pages of "
            f"{big.m['page']:,} rows on one connection, each in a short transaction of its "
            "own, the next page read while one is encoded to JSON Lines, written in chunks of "
            f"{big.m['chunk'] // 1024} KiB; "
            f"{self.args.repeat} timed runs per export. rows/s = rows written / wall time of "
            "the whole export (first query included), median run and every run; rows per "
            "CPU second = rows / CPU time of the process (all threads), which other tenants "
            "of a shared machine slow less than the wall time. Python peak = tracemalloc "
            "peak over a further, identical export; RSS growth = peak resident memory during "
            "an export minus resident memory just before it, the largest of the timed runs:",
            "",
            *table,
            "",
            *verdicts,
            "",
            *self._postgres_note(),
            f"- Date: {self.when:%Y-%m-%d %H:%M %Z}",
            f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}, SQLite {sqlite3.sqlite_version}",
            "- Data: fresh databases at the current schema; decided items of one route, each "
            "with a chat prompt (system + user message) and its decisive decision: 8 in 10 "
            "edited (`message` and `email`, the edit holding both versions), 1 in 10 "
            "approved as submitted, 1 in 10 a comparison decided `a` or `b`; DPO rows come "
            "from the edits and comparisons, SFT rows from the edits and approvals; SQLite "
            "in WAL mode (synchronous=NORMAL) as signoff runs it"
            + ("; PostgreSQL `ANALYZE`-d after seeding" if self.postgres else ""),
            f"- Seeding (not in the figures): {seeding}",
            f"- Each database measured by a fresh process; RSS peak from "
            f"{big.m['dpo']['rss'][0]['method']}; process peak RSS at {big.items:,} items: "
            + ("n/a" if hwm is None else f"{hwm / 1024:,.0f} MiB"),
            "",
            "Reproduce with `make bench` (flags: `.venv/bin/python bench/export.py --help`"
            + (f"; this run: `{_command(self.args)}`" if _command(self.args) else "")
            + ").",
        ]
        return "\n".join(lines) + "\n"

    def _postgres_note(self) -> list[str]:
        pg = self.postgres
        if pg is None:
            return []
        verdicts = [
            f"- **{fmt}: at least {RATE_TARGET:,.0f} rows/s at {pg.items:,} items** "
            f"(PostgreSQL): {pg.rate(fmt):,.0f} rows/s ({pg.cpu_rate(fmt):,.0f} per CPU second "
            f"of the exporting process): **{'PASS' if pg.rate(fmt) >= RATE_TARGET else 'FAIL'}**"
            for fmt in FORMATS
        ]
        split = "; ".join(f"{fmt}: {pg.cpu_split(fmt)}" for fmt in FORMATS)
        return [
            *verdicts,
            "",
            f"Median runs on PostgreSQL: {split} (*anything else*: the machine's busy time "
            "beyond the exporter and the bench database's backends: other processes, "
            "PostgreSQL's background and parallel workers, and CPU time taken by the "
            "hypervisor for other guests).",
            "",
            f"On PostgreSQL the server runs on the same {os.cpu_count()} CPUs as the exporter: "
            "each page's join, and its JSONB turned back into text, is server time. The "
            "exporter reads the next page while it encodes the current one, so the two "
            "overlap instead of adding up; rows/s stays below rows per CPU second when other "
            "work takes one of the two CPUs.",
            "",
        ]


def _command(a: argparse.Namespace) -> str:
    parts = []
    if a.items != 1_000_000:
        parts.append(f"--items {a.items}")
    if a.baseline != 100_000:
        parts.append(f"--baseline {a.baseline}")
    if a.repeat != 3:
        parts.append(f"--repeat {a.repeat}")
    if a.postgres:
        parts.append(f"--postgres {a.postgres}")
    return " ".join(["bench/export.py", *parts]) if parts else ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--items", type=int, default=None, help="decided items in the big database (1000000)"
    )
    parser.add_argument(
        "--baseline",
        type=int,
        default=None,
        help="decided items in the small database memory is compared with (100000)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="timed runs of each export per database (3)"
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
        help="smoke run: 20000 items, 2000 baseline, 2 runs; implies --no-write",
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS.name} alone"
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = (20_000, 2_000, 2) if args.quick else (1_000_000, 100_000, 3)
    for name, value in zip(("items", "baseline", "repeat"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.no_write = True
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.child and not 10 <= args.baseline < args.items:
        parser.error("need 10 <= --baseline < --items")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = asyncio.run(measure(args.child, workdir=Path(args.workdir), repeat=args.repeat))
        print(json.dumps(result, default=str))
        return 0
    # SIGTERM unwinds like Ctrl-C, so the temporary files (and a PostgreSQL database) go
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="signoff-bench-export-") as tmp:
        runs = [
            run_sqlite(Path(tmp), items=n, repeat=args.repeat) for n in (args.baseline, args.items)
        ]
        pg = (
            run_postgres(args.postgres, Path(tmp), items=args.items, repeat=args.repeat)
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
        "; ".join(
            f"{fmt} at {report.big.items:,}: {report.big.rate(fmt):,.0f} rows/s "
            f"({'PASS' if report.rate_passed(fmt) else 'FAIL'}), memory flat "
            f"{'PASS' if report.memory_passed(fmt) else 'FAIL'} "
            f"(Python peak {report.py_ratio(fmt):.2f}x)"
            for fmt in FORMATS
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
