"""Writers of one process take turns on SQLite's write lock in arrival order.

SQLite lets one transaction write at a time; ``BEGIN IMMEDIATE`` on a second connection
waits in SQLite's busy handler, which sleeps and polls (1, 2, 5 … up to 100 ms between
tries). Under load that is unfair: a writer that has backed off to 100 ms sleeps keeps
losing the lock to newcomers polling every millisecond, so a few transactions wait for
seconds while most wait for none (`bench/click_ack.py`: card updates at p50 0.65 s, p99
2.6 s). Queueing this process's writers on an asyncio lock before ``BEGIN IMMEDIATE``
serves them first come, first served, and leaves the busy handler to the rare writer of
another process (a CLI command beside the server).

The turn is taken when a write transaction begins and handed on when it commits or
rolls back, or, whatever happened to the transaction, when its connection goes back to
the pool or is invalidated.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.util.concurrency import await_only, in_greenlet

TURN_TIMEOUT_SECONDS = 30.0  # as long as SQLite's own busy timeout


class WriterTurns:
    """One queue of writers per event loop (an asyncio lock belongs to one loop)."""

    def __init__(self, *, timeout: float | None = None) -> None:
        self._timeout = TURN_TIMEOUT_SECONDS if timeout is None else timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # DBAPI connection holding a turn -> the lock it holds, and that lock's loop
        self._held: dict[int, tuple[asyncio.Lock, asyncio.AbstractEventLoop]] = {}

    def take(self, dbapi_connection: Any) -> None:
        """Wait for this connection's turn to write (inside SQLAlchemy's greenlet; a
        synchronous caller outside one goes straight to SQLite's busy handler)."""
        if not in_greenlet():
            return
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        try:
            await_only(asyncio.wait_for(lock.acquire(), self._timeout))
        except TimeoutError as exc:
            # Parity with the busy timeout this replaces: a writer nested inside another
            # writer's transaction of the same task fails here instead of hanging.
            raise OperationalError(
                "BEGIN IMMEDIATE",
                {},
                Exception(f"database is locked: no turn to write within {self._timeout:g} s"),
            ) from exc
        self._held[id(dbapi_connection)] = (lock, loop)

    def holders(self) -> int:
        """How many connections hold a turn now (0 or 1 per event loop)."""
        return len(self._held)

    def hand_on(self, dbapi_connection: Any) -> None:
        """The transaction on this connection ended: the next writer's turn."""
        held = self._held.pop(id(dbapi_connection), None)
        if held is None:
            return
        lock, loop = held
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # a pool clean-up outside the loop's thread
            running = None
        if running is loop:
            lock.release()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(lock.release)
