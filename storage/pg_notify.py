"""Change notices between replicas on PostgreSQL: LISTEN/NOTIFY on ``signoff_items``.

Each process that changes an item sends ``NOTIFY signoff_items, '<item id>'`` right after
the change commits; each serving replica LISTENs on one dedicated asyncpg connection and
hands the ids it hears from *other* sessions to its in-process notifier, so a long poll or
a web page served by one replica wakes when another replica (or ``signoff sweep --once``)
changes the item. The same connection sends and listens: a session hears its own NOTIFYs,
and those are dropped by backend pid, so nothing loops.

Notices are a speed-up, not the record: when the connection is down (PostgreSQL
restarting) the feed reconnects with backoff, notices queued meanwhile are sent after it
is back, and readers keep their database re-checks, which cover what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("signoff.notify")

CHANNEL = "signoff_items"
_MAX_PENDING = 10_000  # notices queued while disconnected; beyond this the oldest go
_MAX_PAYLOAD = 200  # an item id is ~30 characters; anything longer is not ours
_CONNECT_TIMEOUT = 5.0
_SEND = "SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x"


def is_postgres(url: str) -> bool:
    """Whether a SQLAlchemy database URL names PostgreSQL."""
    return make_url(url).get_backend_name() == "postgresql"


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, from a ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgChangeFeed:
    """Sends this process's item-change notices and hears other processes' ones.

    ``publish`` is synchronous and never blocks (it is called right after a commit);
    ``start`` runs the connection in the background; ``close`` sends what is still queued
    (over a one-off connection when the feed never started, as in a CLI command) and
    stops.
    """

    def __init__(
        self,
        *,
        dsn: str,
        on_notice: Callable[[str], None],
        channel: str = CHANNEL,
        retry_min_seconds: float = 0.2,
        retry_max_seconds: float = 10.0,
        engine: AsyncEngine | None = None,
    ) -> None:
        self._dsn = dsn
        self._engine = engine  # sends at close when the feed never ran (a CLI command)
        self._on_notice = on_notice
        self._channel = channel
        self._retry_min = retry_min_seconds
        self._retry_max = retry_max_seconds
        self._pending: dict[str, None] = {}  # an ordered set
        self._kick = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pid: int | None = None  # our backend's pid while connected
        self._connected = asyncio.Event()
        self.heard = 0  # notices taken from other sessions (for tests and logs)

    @property
    def connected(self) -> bool:
        """Whether the LISTEN connection is up (while it is not, readers poll)."""
        return self._connected.is_set()

    async def wait_connected(self, *, within: float) -> bool:
        """Wait until the LISTEN connection is up; False after ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._connected.wait()
        return self.connected

    def publish(self, item_id: str) -> None:
        """Queue a notice that ``item_id`` changed (sent at once when connected)."""
        self._pending[item_id] = None
        if len(self._pending) > _MAX_PENDING:
            del self._pending[next(iter(self._pending))]
        self._kick.set()

    def start(self) -> None:
        """Listen (and send) in the background until :meth:`close`."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="signoff-pg-notify")

    async def close(self) -> None:
        """Send what is queued, then stop listening."""
        if self._task is not None:
            self._stop.set()
            self._kick.set()
            await self._task
            self._task = None
        if self._pending:
            try:
                await self._send_once()
            except Exception as exc:
                log.warning("change notices: sending at close failed (%s)", exc)
        if self._pending:
            log.warning(
                "%d change notices were not sent (database unreachable)", len(self._pending)
            )
            self._pending.clear()

    async def _send_once(self) -> None:
        """Send what is queued over the engine's pool, or a connection of its own."""
        if self._engine is None:
            conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_TIMEOUT)
            try:
                await self._send(conn)
            finally:
                await _close(conn)
            return
        ids = list(self._pending)
        async with self._engine.begin() as connection:  # delivered when this commits
            await connection.execute(
                text("SELECT pg_notify(:channel, x) FROM unnest(CAST(:ids AS text[])) AS x"),
                {"channel": self._channel, "ids": ids},
            )
        self._pending.clear()

    # -- the connection --------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_min
        while not self._stop.is_set():
            try:
                conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_TIMEOUT)
            except Exception as exc:
                log.warning("change notices: cannot connect (%s); retrying in %.1fs", exc, delay)
                await self._pause(delay)
                delay = min(self._retry_max, delay * 2)
                continue
            delay = self._retry_min
            try:
                await self._serve(conn)
            except Exception as exc:
                log.warning("change notices: connection lost (%s); reconnecting", exc)
            finally:
                self._connected.clear()
                self._pid = None
                await _close(conn)
            await self._pause(delay)

    async def _serve(self, conn: Any) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(self._channel, self._heard)
        self._pid = conn.get_server_pid()
        self._connected.set()
        log.info("change notices: listening on %s", self._channel)
        while not lost.is_set():
            self._kick.clear()
            await self._send(conn)
            if self._stop.is_set():
                return
            waits = [asyncio.create_task(self._kick.wait()), asyncio.create_task(lost.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
        raise asyncpg.InterfaceError("the connection was closed")

    async def _send(self, conn: Any) -> None:
        if not self._pending:
            return
        ids = list(self._pending)
        self._pending.clear()
        try:
            await conn.execute(_SEND, self._channel, ids, timeout=_CONNECT_TIMEOUT)
        except BaseException:
            for item_id in ids:  # sent after reconnecting; a stale notice only wakes a reader
                self._pending.setdefault(item_id, None)
            raise

    def _heard(self, _conn: Any, pid: int, _channel: str, payload: str) -> None:
        if pid == self._pid or not payload or len(payload) > _MAX_PAYLOAD:
            return  # our own notice, already handled in-process; or not an item id
        self.heard += 1
        try:
            self._on_notice(payload)
        except Exception:
            log.exception("change notices: handling %r failed", payload)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()


async def _close(conn: Any) -> None:
    if conn.is_closed():
        return
    try:
        await conn.close(timeout=_CONNECT_TIMEOUT)
    except Exception:
        conn.terminate()
