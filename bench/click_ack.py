"""Click to acknowledgement: signed Slack approve clicks from 50 concurrent reviewers
against a real ``signoff serve``, with the Slack emulator standing in for Slack.

Run from the repository root: ``make bench`` (``.venv/bin/python bench/click_ack.py``).

Method
------
* **Slack.** The emulator of the tests (``tests/fakes/slack.py``) runs in this process
  on a free port of 127.0.0.1. It is the real emulator, extended only to note the
  moment each ``chat.update`` reaches it (``time.monotonic``, the system-wide clock,
  when the request has been read) and to hand that moment to the reviewer waiting for
  it.
* **Server.** ``signoff db upgrade``, ``signoff keys create bench --json`` and then
  ``signoff serve``, as subprocesses of the installed console script, in a fresh
  temporary directory: SQLite (WAL) on a new file, log level warning, Slack in HTTP
  mode (``SIGNOFF_SLACK_BOT_TOKEN``, ``SIGNOFF_SLACK_SIGNING_SECRET``,
  ``SIGNOFF_SLACK_API_URL`` = the emulator) and a route file of ``--channels`` routes,
  each posting to its own Slack channel, with the ``--reviewers`` Slack user ids
  allowed to decide. (signoff paces posts to about one a second per channel, as Slack
  asks; one channel would need ``--items`` seconds to show every card.) The server is
  ready when ``GET /healthz`` answers.
* **Cards.** ``--items`` email items are submitted with ``POST /v1/items`` (one client
  per channel, concurrently) and the run waits until the emulator holds a card for
  every one (``chat.postMessage`` with its ``ts``); the card's approve button names the
  item.
* **Reviewers.** ``--reviewers`` clients (default 50), one keep-alive connection each,
  in a closed loop: each takes its own share of the items and, for each, sends a
  ``block_actions`` payload (the shared fixture ``block_actions_button_click.json`` with
  the real card message, channel, user and an ``signoff:approve:<item>`` action),
  form-encoded and signed like Slack (``v0`` HMAC-SHA256 of the timestamp and body,
  ``X-Slack-Request-Timestamp``, ``X-Slack-Signature``) to ``POST /slack/events``; it
  times the HTTP 200 (bolt's ack), then waits for the card's ``chat.update`` to reach
  the emulator, timed from the same send, before clicking the next card (a reviewer
  moves on when the card has changed). The first ``--warmup`` clicks of each reviewer
  are not counted.
* **Baselines, same server, same clients, same concurrency** (run before the clicks):
  unsigned ``GET /healthz`` (the HTTP stack alone), and a signed no-op click: the same
  payload, signed the same way, with the action id ``signoff:choose:bench-noop``, which
  bolt verifies, parses and routes to signoff's one-click listener, which acknowledges
  and finds nothing to do. The difference between the no-op and ``/healthz`` is what
  bolt and signature verification cost; between the approve click and the no-op, what
  deciding adds to the ack (the decision runs after the ack, on the same event loop).
* **Check.** After the server has stopped, the SQLite file must hold every item
  approved, with exactly one decision by the reviewer who clicked it, and the emulator
  must have received a ``chat.update`` for every card and no ephemeral error.

The results go to stdout and to the ``## Click to acknowledgement (bench/click_ack.py)``
section of ``BENCHMARKS.md`` (that section is replaced; other sections are kept).
Targets: approve ack p99 < 100 ms and card updated within 1 s p99, at 50 concurrent
reviewers. The exit status is non-zero if a request failed or the check fails; missing
a target alone does not fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import math
import os
import platform
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fakes.slack

from benchlib import free_port, machine_busy, percentile, proc_cpu, write_section  # noqa: E402

from tests.fakes.slack import JSONDict, SlackEmulator  # noqa: E402

BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Click to acknowledgement (bench/click_ack.py)"
FIXTURE = ROOT / "tests" / "fixtures" / "slack" / "block_actions_button_click.json"
ACK_TARGET_MS = 100.0
UPDATE_TARGET_MS = 1000.0
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
NOOP_ACTION = "signoff:choose:bench-noop"
START_TIMEOUT = 60.0
UPDATE_TIMEOUT = 30.0
MAX_ERROR_SAMPLES = 5
APPROVE = re.compile(r"signoff:approve:(itm_[0-9A-Za-z]+)")
ITEM = {
    "kind": "email",
    "title": "Refund for order {n}",
    "content": {
        "to": ["jane@example.com"],
        "subject": "Your refund",
        "body": "Hi Jane, your refund of 42.00 EUR for order {n} is on its way. Best, Support",
    },
    "confidence": 0.5,
}


# -- Slack, with arrival times of card updates ----------------------------------------------


@dataclass
class TimedSlack(SlackEmulator):
    """The emulator, noting when each ``chat.update`` arrives (``time.monotonic``)."""

    updates: Counter[str] = field(default_factory=Counter)  # ts -> chat.update calls
    waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)

    async def _update(self, params: JSONDict, token: str) -> JSONDict:
        arrived = time.monotonic()
        answer = await super()._update(params, token)
        ts = str(params.get("ts") or "")
        if answer.get("ok"):
            self.updates[ts] += 1
            waiter = self.waiters.pop(ts, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(arrived)
        return answer


# -- the server -----------------------------------------------------------------------------


def route_file(path: Path, *, channels: int, reviewers: Sequence[str]) -> list[tuple[str, str]]:
    """Write the routes (one Slack channel each); their (name, channel) pairs."""
    pairs = [(f"bench-{n:03d}", f"C0BENCH{n:03d}") for n in range(channels)]
    doc = {
        "routes": {
            name: {
                "surfaces": [{"type": "slack", "channel": channel}],
                "reviewers": {"slack": list(reviewers)},
            }
            for name, channel in pairs
        }
    }
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    return pairs


def server_env(workdir: Path, *, db: Path, port: int, slack_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and "proxy" not in k.lower()
    }
    env.update(
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        SIGNOFF_CONFIG=str(workdir / "signoff.yaml"),
        SIGNOFF_HOST="127.0.0.1",
        SIGNOFF_PORT=str(port),
        SIGNOFF_LOG_LEVEL="warning",
        SIGNOFF_SLACK_BOT_TOKEN=TOKEN,
        SIGNOFF_SLACK_SIGNING_SECRET=SECRET,
        SIGNOFF_SLACK_API_URL=slack_url,
    )
    return env


def signoff_bin() -> str:
    return str(Path(sys.executable).parent / "signoff")


async def run_cli(args: Sequence[str], *, env: dict[str, str], cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        signoff_bin(),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    if process.returncode != 0:
        raise RuntimeError(f"signoff {' '.join(args)} failed:\n{err.decode(errors='replace')}")
    return out.decode()


@contextlib.asynccontextmanager
async def running_server(
    workdir: Path, env: dict[str, str], base: str
) -> Any:  # AsyncIterator[asyncio.subprocess.Process]
    """``signoff serve``, ready (``/healthz`` answers), stopped with SIGTERM at the end."""
    log = (workdir / "server.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        signoff_bin(), "serve", env=env, cwd=workdir, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(
                        f"signoff serve exited with {process.returncode}:\n"
                        + (workdir / "server.log").read_text(errors="replace")[-4000:]
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{base}/healthz") as answer:
                        if answer.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"signoff serve not ready within {START_TIMEOUT:.0f} s")
                await asyncio.sleep(0.1)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


# -- signed clicks --------------------------------------------------------------------------


def click_payload(
    template: JSONDict, *, action_id: str, user: str, channel: str, message: JSONDict
) -> JSONDict:
    """A block_actions payload for a button of ``message`` (as Slack sends the message
    along: its ts, text and blocks)."""
    payload = json.loads(json.dumps(template))
    payload["user"] = {"id": user, "username": user.lower(), "name": user.lower()}
    payload["channel"] = {"id": channel}
    payload["container"].update(channel_id=channel, message_ts=message["ts"])
    payload["message"] = {
        k: message[k] for k in ("type", "ts", "text", "blocks", "bot_id", "app_id") if k in message
    }
    payload["trigger_id"] = f"{time.time():.0f}.{user}.bench"
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": "signoff-actions",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": "approve",
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
    ]
    return payload


def signed(payload: JSONDict) -> tuple[bytes, dict[str, str]]:
    """The form body Slack sends for ``payload`` and its signature headers."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


# -- phases ---------------------------------------------------------------------------------


@dataclass
class Card:
    item_id: str
    channel: str
    message: JSONDict

    @property
    def ts(self) -> str:
        return str(self.message["ts"])


@dataclass
class PhaseResult:
    name: str
    ack_ms: list[float] = field(default_factory=list)  # measured requests only
    update_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the measured part
    server_cores: float | None = None
    bench_cores: float = 0.0
    machine_cores: float | None = None  # all CPUs busy, in cores

    @property
    def other_cores(self) -> float | None:
        """CPU used by neither the server nor this process: other tenants of the machine."""
        if self.machine_cores is None or self.server_cores is None:
            return None
        return max(0.0, self.machine_cores - self.server_cores - self.bench_cores)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    @property
    def rate(self) -> float:
        return len(self.ack_ms) / self.seconds if self.seconds else math.nan


async def run_phase(
    name: str,
    *,
    reviewers: int,
    per_reviewer: int,
    warmup: int,
    request: Callable[[aiohttp.ClientSession, int, int], Awaitable[tuple[float, float | None]]],
    server_pid: int,
) -> PhaseResult:
    """``reviewers`` closed-loop clients, ``warmup`` + ``per_reviewer`` requests each;
    ``request(session, reviewer, n)`` returns (ack ms, update ms or None)."""
    result = PhaseResult(name)
    warm = asyncio.Barrier(reviewers + 1)
    go = asyncio.Event()

    async def client(r: int) -> None:
        # Idle connections go after 4 s, before uvicorn's keep-alive timeout (5 s) closes
        # them under a request on its way (a reviewer may wait that long for an update).
        connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=4.0)
        timeout = aiohttp.ClientTimeout(total=UPDATE_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for n in range(warmup + per_reviewer):
                if n == warmup:
                    await warm.wait()
                    await go.wait()
                try:
                    ack, update = await request(session, r, n)
                except Exception as exc:  # counted and shown
                    result.error(f"{type(exc).__name__}: {exc}")
                    continue
                if n >= warmup:
                    result.ack_ms.append(ack)
                    if update is not None:
                        result.update_ms.append(update)

    tasks = [asyncio.create_task(client(r)) for r in range(reviewers)]
    await warm.wait()  # every client has done its warm-up
    server_before, bench_before = proc_cpu(server_pid), time.process_time()
    machine_before = machine_busy()
    started = time.monotonic()
    go.set()
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - started
    server_after, machine_after = proc_cpu(server_pid), machine_busy()
    result.bench_cores = (time.process_time() - bench_before) / result.seconds
    if machine_before is not None and machine_after is not None:
        result.machine_cores = (machine_after - machine_before) / result.seconds
    if server_before is not None and server_after is not None:
        result.server_cores = (server_after - server_before) / result.seconds
    result.ack_ms.sort()
    result.update_ms.sort()
    return result


@dataclass
class Outcome:
    phases: list[PhaseResult]
    cards: int
    clicked: int
    check: list[str]  # problems found by the check; empty when all is well
    approved: int
    decisions: int
    updates: int
    ephemerals: int
    submit_s: float
    server_log: str


async def submit_items(
    base: str, api_key: str, pairs: Sequence[tuple[str, str]], items: int
) -> list[str]:
    """``items`` items spread over the routes, one client per route; their ids."""
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    async def per_route(k: int, route: str) -> None:
        async with aiohttp.ClientSession() as http:
            for n in range(k, items, len(pairs)):
                data = json.loads(json.dumps(ITEM).replace("{n}", str(n)))
                data["route"] = route
                async with http.post(f"{base}/v1/items", json=data, headers=headers) as answer:
                    body = await answer.text()
                    if answer.status != 201:
                        raise RuntimeError(f"POST /v1/items: HTTP {answer.status}: {body[:300]}")
                    ids.append(json.loads(body)["id"])

    await asyncio.gather(*(per_route(k, route) for k, (route, _) in enumerate(pairs)))
    return ids


def cards_of(slack: TimedSlack) -> dict[str, Card]:
    """Every card the emulator holds, by the item its approve button names."""
    cards = {}
    for channel, messages in slack.messages.items():
        for message in messages:
            if message.get("thread_ts"):
                continue
            found = APPROVE.search(json.dumps(message.get("blocks") or []))
            if found:
                cards[found[1]] = Card(found[1], channel, message)
    return cards


async def bench(args: argparse.Namespace, workdir: Path) -> Outcome:
    users = [f"U0REV{r:03d}" for r in range(args.reviewers)]
    pairs = route_file(workdir / "signoff.yaml", channels=args.channels, reviewers=users)
    template: JSONDict = json.loads(FIXTURE.read_text())
    db = workdir / "click.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with TimedSlack() as slack:
        env = server_env(workdir, db=db, port=port, slack_url=slack.url)
        await run_cli(["db", "upgrade"], env=env, cwd=workdir)
        api_key = json.loads(
            await run_cli(["keys", "create", "bench", "--json"], env=env, cwd=workdir)
        )["api_key"]
        async with running_server(workdir, env, base) as server:
            print(
                f"signoff serve pid {server.pid} on {base}; Slack emulator {slack.url}", flush=True
            )
            started = time.monotonic()
            ids = await submit_items(base, api_key, pairs, args.items)
            deadline = time.monotonic() + START_TIMEOUT
            while len(cards := cards_of(slack)) < len(ids):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(cards)} of {len(ids)} cards were posted")
                await asyncio.sleep(0.05)
            submit_s = time.monotonic() - started
            print(f"{len(ids):,} items submitted, {len(cards):,} cards posted in {submit_s:.1f} s")

            per = args.items // args.reviewers  # cards per reviewer, warm-up included
            warmup = min(args.warmup, per - 1)
            queue = sorted(cards.values(), key=lambda c: c.item_id)
            shares = [queue[r * per : (r + 1) * per] for r in range(args.reviewers)]
            events = f"{base}/slack/events"
            any_card = queue[0]

            async def healthz(session: aiohttp.ClientSession, r: int, n: int) -> tuple[float, None]:
                sent = time.monotonic()
                async with session.get(f"{base}/healthz") as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"HTTP {answer.status}")
                return (time.monotonic() - sent) * 1000, None

            async def noop(session: aiohttp.ClientSession, r: int, n: int) -> tuple[float, None]:
                payload = click_payload(
                    template,
                    action_id=NOOP_ACTION,
                    user=users[r],
                    channel=any_card.channel,
                    message=any_card.message,
                )
                body, headers = signed(payload)
                sent = time.monotonic()
                async with session.post(events, data=body, headers=headers) as answer:
                    text = await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"HTTP {answer.status}: {text[:200]!r}")
                return (time.monotonic() - sent) * 1000, None

            clicked: dict[str, str] = {}

            async def approve(
                session: aiohttp.ClientSession, r: int, n: int
            ) -> tuple[float, float | None]:
                card = shares[r][n]
                payload = click_payload(
                    template,
                    action_id=f"signoff:approve:{card.item_id}",
                    user=users[r],
                    channel=card.channel,
                    message=card.message,
                )
                body, headers = signed(payload)
                updated = asyncio.get_running_loop().create_future()
                slack.waiters[card.ts] = updated
                sent = time.monotonic()
                async with session.post(events, data=body, headers=headers) as answer:
                    text = await answer.read()
                    acked = time.monotonic()
                    if answer.status != 200:
                        raise RuntimeError(f"HTTP {answer.status}: {text[:200]!r}")
                clicked[card.item_id] = users[r]
                try:
                    arrived = await asyncio.wait_for(updated, UPDATE_TIMEOUT)
                except TimeoutError:
                    raise RuntimeError(f"no chat.update for {card.item_id}") from None
                return (acked - sent) * 1000, (arrived - sent) * 1000

            phases = []
            profiler = None
            for name, request in (
                ("`GET /healthz` (unsigned)", healthz),
                ("signed no-op click", noop),
                ("signed approve click", approve),
            ):
                if request is approve and args.profile:
                    profiler = await start_profiler(server.pid, args.profile)
                print(
                    f"{name}: {args.reviewers} reviewers x ({warmup} + {per - warmup}) ... ",
                    end="",
                    flush=True,
                )
                result = await run_phase(
                    name,
                    reviewers=args.reviewers,
                    per_reviewer=per - warmup,
                    warmup=warmup,
                    request=request,
                    server_pid=server.pid,
                )
                phases.append(result)
                print(
                    f"p50 {percentile(result.ack_ms, 50):.1f} ms, p99 "
                    f"{percentile(result.ack_ms, 99):.1f} ms, {result.rate:,.0f}/s, "
                    f"{result.errors} errors",
                    flush=True,
                )
            await asyncio.sleep(0.5)  # let late card updates land before the server stops
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await profiler.wait()
                print(f"py-spy profile of the approve phase: {args.profile}")
        server_log = (workdir / "server.log").read_text(errors="replace")
        clicked_cards = [c for c in queue if c.item_id in clicked]
        check, approved, decisions = verify(db, clicked)
        missing = [c.item_id for c in clicked_cards if slack.updates[c.ts] < 1]
        if missing:
            check.append(f"{len(missing)} clicked cards never updated, e.g. {missing[:3]}")
        ephemerals = len(slack.calls_to("chat.postEphemeral"))
        if ephemerals:
            check.append(f"{ephemerals} ephemeral messages (refusals or errors) were sent")
        unclicked = len(ids) - len(clicked)
        if unclicked != args.items - per * args.reviewers:
            check.append(f"{unclicked} items were not clicked")
        return Outcome(
            phases=phases,
            cards=len(cards),
            clicked=len(clicked),
            check=check,
            approved=approved,
            decisions=decisions,
            updates=sum(slack.updates[c.ts] for c in clicked_cards),
            ephemerals=ephemerals,
            submit_s=submit_s,
            server_log=server_log,
        )


async def start_profiler(pid: int, out: str) -> asyncio.subprocess.Process:
    """py-spy sampling ``pid`` into ``out`` (collapsed stacks, one line per stack;
    ``--profile`` only): only the thread holding the GIL, so the samples show what the
    one event loop (and any thread competing with it for the interpreter) spends its
    time on."""
    spy = Path(sys.executable).parent / "py-spy"
    process = await asyncio.create_subprocess_exec(
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--output",
        out,
        "--rate",
        "100",
        "--gil",
    )
    await asyncio.sleep(1.0)  # attached
    return process


def verify(db: Path, clicked: dict[str, str]) -> tuple[list[str], int, int]:
    """Problems with the stored decisions (every clicked item approved once, by its
    clicker); the approved items and decisions counted."""
    problems: list[str] = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        states = dict(conn.execute("SELECT id, state FROM items").fetchall())
        rows = conn.execute("SELECT item_id, action, actor_id FROM decisions").fetchall()
    per_item: dict[str, list[tuple[str, str]]] = {}
    for item_id, action, actor in rows:
        per_item.setdefault(item_id, []).append((action, actor))
    wrong = [
        i
        for i, user in clicked.items()
        if states.get(i) != "approved" or per_item.get(i) != [("approve", user)]
    ]
    if wrong:
        i = wrong[0]
        problems.append(
            f"{len(wrong)} clicked items not approved exactly once by their clicker, e.g. "
            f"{i}: state {states.get(i)}, decisions {per_item.get(i)}"
        )
    stray = [i for i in per_item if i not in clicked]
    if stray:
        problems.append(f"{len(stray)} items that nobody clicked have decisions")
    approved = sum(1 for s in states.values() if s == "approved")
    return problems, approved, len(rows)


# -- report ---------------------------------------------------------------------------------


def markdown(o: Outcome, args: argparse.Namespace, when: dt.datetime) -> str:
    healthz, noop, click = o.phases
    rows = [
        "| request | measured | p50 ms | p99 ms | max ms | requests/s | errors "
        "| server CPU | load generator + emulator CPU | anything else |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in o.phases:
        rows.append(
            f"| {p.name} → HTTP 200 | {len(p.ack_ms):,} | {percentile(p.ack_ms, 50):.1f} "
            f"| {percentile(p.ack_ms, 99):.1f} | {max(p.ack_ms, default=math.nan):.1f} "
            f"| {p.rate:,.0f} | {p.errors} | {_cores(p.server_cores)} | {p.bench_cores:.2f} "
            f"| {_cores(p.other_cores)} |"
        )
    u = click.update_ms
    rows.append(
        f"| signed approve click → `chat.update` at the emulator | {len(u):,} "
        f"| {percentile(u, 50):.1f} | {percentile(u, 99):.1f} | {max(u, default=math.nan):.1f} "
        f"| {click.rate:,.0f} | {click.errors} | (same run) | | |"
    )
    ack_p99, update_p99 = percentile(click.ack_ms, 99), percentile(u, 99)
    overhead = percentile(noop.ack_ms, 50) - percentile(healthz.ack_ms, 50)
    ack_ok, update_ok = ack_p99 < ACK_TARGET_MS, update_p99 < UPDATE_TARGET_MS
    per = args.items // args.reviewers
    warmup = min(args.warmup, per - 1)
    lines = [
        SECTION,
        "",
        *rows,
        "",
        f"- **Click to acknowledgement p99 < {ACK_TARGET_MS:.0f} ms at {args.reviewers} "
        f"concurrent reviewers**: {ack_p99:.1f} ms: **{'PASS' if ack_ok else 'FAIL'}**",
        f"- **Message updated within {UPDATE_TARGET_MS / 1000:g} s p99**: {update_p99:.1f} ms: "
        f"**{'PASS' if update_ok else 'FAIL'}**",
        f"- Baselines (p50 / p99): unsigned `GET /healthz` {percentile(healthz.ack_ms, 50):.1f} / "
        f"{percentile(healthz.ack_ms, 99):.1f} ms; signed no-op click "
        f"{percentile(noop.ack_ms, 50):.1f} / {percentile(noop.ack_ms, 99):.1f} ms (bolt and "
        f"signature verification add {overhead:.1f} ms at p50); approve click "
        f"{percentile(click.ack_ms, 50):.1f} / {ack_p99:.1f} ms (the "
        "decision itself runs after the ack, on the same event loop)",
        f"- Check: {o.cards:,} cards posted; {o.clicked:,} clicked "
        f"items, {o.approved:,} approved, {o.decisions:,} decisions, {o.updates:,} card "
        f"updates, {o.ephemerals} ephemeral errors: "
        + ("**OK**" if not o.check else "**PROBLEMS**: " + "; ".join(o.check)),
        "",
        f"- Date: {when:%Y-%m-%d %H:%M %Z}",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, Python "
        f"{platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        "- Server: `signoff serve` (uvicorn, one process), SQLite in WAL mode on a fresh "
        f"temporary file, Slack in HTTP mode against the emulator, {args.channels} routes with "
        f"a Slack channel each and {args.reviewers} Slack reviewers, log level warning; cards "
        f"for {args.items:,} email items posted in {o.submit_s:.1f} s (paced to one a second "
        "per channel) before the clicks",
        f"- Load: {args.reviewers} closed-loop aiohttp clients (one keep-alive connection "
        "each) in one process that also runs the Slack emulator; per phase each sends "
        f"{warmup} warm-up and {per - warmup} measured requests; an approve click waits for its "
        "card's update before the next one; latency = send to last byte of the answer "
        "(update: send to the `chat.update` request read by the emulator), nearest-rank "
        "percentiles; CPU in cores over the measured part (1.00 = one core busy; *anything "
        "else* = the machine's busy CPU time used by neither the server nor the load "
        "generator: other processes, and time the hypervisor gave other guests, which "
        "delays both)",
        "",
        "Reproduce with `make bench` (flags: `.venv/bin/python bench/click_ack.py --help`"
        + (f"; this run: `{_command(args)}`" if _command(args) else "")
        + ").",
    ]
    return "\n".join(lines) + "\n"


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _command(a: argparse.Namespace) -> str:
    defaults = {"items": 2000, "reviewers": 50, "channels": 100, "warmup": 2}
    parts = [f"--{k} {getattr(a, k)}" for k, v in defaults.items() if getattr(a, k) != v]
    return " ".join(["bench/click_ack.py", *parts]) if parts else ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=None, help="items (cards) to click (2000)")
    parser.add_argument(
        "--reviewers", type=int, default=50, help="concurrent closed-loop reviewers (50)"
    )
    parser.add_argument(
        "--channels",
        type=int,
        default=None,
        help="routes, each posting to its own Slack channel (100)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="requests per reviewer and phase not counted (2)"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample the server with py-spy (the bench extra) during the approve clicks, "
        "into FILE (collapsed stacks)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 300 items over 50 channels; implies --no-write",
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS.name} alone"
    )
    args = parser.parse_args(argv)
    defaults = (300, 50) if args.quick else (2000, 100)
    for name, value in zip(("items", "channels"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.no_write = True
    if args.reviewers < 1 or args.channels < 1 or args.warmup < 0:
        parser.error("--reviewers and --channels must be at least 1, --warmup not negative")
    if args.items < 2 * args.reviewers:
        parser.error("need at least two items per reviewer")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)  # everything here is on 127.0.0.1
    # SIGTERM unwinds like Ctrl-C, so the server is stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="signoff-bench-click-") as tmp:
        outcome = asyncio.run(bench(args, Path(tmp)))
    section = markdown(outcome, args, dt.datetime.now(dt.UTC).astimezone())
    print()
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS, SECTION, section)
        print(f"wrote the section {SECTION!r} of {BENCHMARKS}")
    log = outcome.server_log.strip()
    if log:
        lines = log.splitlines()
        print(f"\nserver log: {len(lines)} lines; the last ones:", *lines[-10:], sep="\n")
    failed = bool(outcome.check)
    for p in outcome.phases:
        if p.errors:
            failed = True
            print(f"ERROR: {p.errors} failed requests in {p.name}, e.g.:", file=sys.stderr)
            for sample in p.error_samples:
                print(f"  {sample}", file=sys.stderr)
    for problem in outcome.check:
        print(f"ERROR: {problem}", file=sys.stderr)
    click = outcome.phases[-1]
    print(
        f"approve ack p99 {percentile(click.ack_ms, 99):.1f} ms (target < {ACK_TARGET_MS:.0f}); "
        f"update p99 {percentile(click.update_ms, 99):.1f} ms (target < {UPDATE_TARGET_MS:.0f})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
