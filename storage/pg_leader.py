"""Gateway leadership on PostgreSQL: a session-level advisory lock on a dedicated connection.

``pg_try_advisory_lock`` never waits: the replica that gets it leads, the others try
again later. The lock belongs to the database session, so it lasts exactly as long as the
connection: a killed process's session ends and PostgreSQL releases the lock, and a
replica whose connection drops learns at once (asyncpg's termination listener) that it may
no longer be leader. Advisory locks are per database, so deployments on separate
databases of one server do not contend.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

log = logging.getLogger("signoff.leader")

# A fixed 64-bit key (ASCII "signoff!" read as a big-endian integer): one leader per
# database for the gateway connections.
GATEWAY_LOCK_KEY = int.from_bytes(b"signoff!", "big")
_TIMEOUT = 5.0


class PgAdvisoryLock:
    """A :class:`bot.leader.LeaderLock` held by one replica at a time, per database."""

    def __init__(self, *, dsn: str, key: int = GATEWAY_LOCK_KEY, timeout: float = _TIMEOUT):
        self._dsn = dsn
        self._key = key
        self._timeout = timeout
        self._conn: Any = None
        self._held = False
        self._lost = asyncio.Event()

    @property
    def held(self) -> bool:
        return self._held

    @property
    def backend_pid(self) -> int | None:
        """The server pid of the lock's connection (tests end it with pg_terminate_backend)."""
        return None if self._conn is None else int(self._conn.get_server_pid())

    async def acquire(self) -> bool:
        """Try once to take the lock; when held already, check that its connection lives."""
        try:
            if self._held:
                await self._conn.fetchval("SELECT 1", timeout=self._timeout)
                return True
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
                self._conn.add_termination_listener(self._terminated)
            got = await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self._key, timeout=self._timeout
            )
        except Exception as exc:
            log.warning("leadership: the lock's connection failed (%s)", exc)
            await self._drop()
            return False
        if got:
            self._lost.clear()
            self._held = True
        return self._held

    async def lost(self) -> None:
        """Return once a held lock is lost (its connection ended)."""
        await self._lost.wait()

    async def release(self) -> None:
        """Give the lock up (closing the connection ends the session and releases it)."""
        if self._held and self._conn is not None and not self._conn.is_closed():
            try:
                await self._conn.fetchval(
                    "SELECT pg_advisory_unlock($1)", self._key, timeout=self._timeout
                )
            except Exception as exc:
                log.warning("leadership: unlocking failed (%s); closing the session", exc)
        await self._drop()

    def _terminated(self, conn: Any) -> None:
        if conn is not self._conn:
            return
        if self._held:
            log.warning("leadership: the lock's connection ended; no longer leader")
        self._conn = None
        self._held = False
        self._lost.set()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        was_held, self._held = self._held, False
        if was_held:
            self._lost.set()
        if conn is None or conn.is_closed():
            return
        try:
            await conn.close(timeout=self._timeout)
        except Exception:
            conn.terminate()
