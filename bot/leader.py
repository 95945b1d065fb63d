"""Which replica runs the gateway connections: one leader, the others follow.

Discord allows one gateway session per bot token (without sharding) and Slack Socket
Mode should run in one replica at a time, so only the leader starts them. Everything
else (the integrator API, Slack HTTP mode, the web inbox, the release worker, the sweep)
runs in every replica. On PostgreSQL the lock is an advisory lock
(:class:`storage.pg_leader.PgAdvisoryLock`); on SQLite there is one process, always
leader (:class:`SoleLeader`).

A follower tries to take the lock every ``retry_seconds``; when the leader dies its
session ends, the lock is free, and a follower takes over at its next try. A leader whose
lock connection drops stops its gateway clients at once (another replica may be leader
already) and goes back to following.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("signoff.leader")


class LeaderLock(Protocol):
    """A lock at most one replica holds."""

    @property
    def held(self) -> bool:
        """Whether this replica holds the lock (as far as it knows)."""
        ...

    async def acquire(self) -> bool:
        """Try once to take the lock (or, when held, check it still is); never waits."""
        ...

    async def lost(self) -> None:
        """Return once a held lock is lost."""
        ...

    async def release(self) -> None:
        """Give the lock up."""
        ...


class SoleLeader:
    """The lock of a single-process deployment (SQLite): always held."""

    held = True

    async def acquire(self) -> bool:
        return True

    async def lost(self) -> None:
        await asyncio.Event().wait()  # never

    async def release(self) -> None:
        return None


Hook = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class LeaderElector:
    """Takes the lock when it can, and runs ``on_elected`` / ``on_deposed`` as this
    replica becomes leader or stops being one."""

    def __init__(
        self,
        *,
        lock: LeaderLock,
        retry_seconds: float,
        on_elected: Hook = _nothing,
        on_deposed: Hook = _nothing,
    ) -> None:
        self._lock = lock
        self._retry = retry_seconds
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._leading = False
        self._turn = asyncio.Lock()  # one transition at a time
        self._resigned = False

    @property
    def leading(self) -> bool:
        """Whether this replica leads now (its gateway clients are started)."""
        return self._leading and self._lock.held

    async def step(self) -> bool:
        """One try: take (or keep) the lock, and start or stop the gateways to match."""
        async with self._turn:
            if self._resigned:
                return False
            if self._leading and not self._lock.held:
                await self._depose()
            held = await self._lock.acquire()
            if held and not self._leading:
                self._leading = True
                log.info("leadership: this replica leads (gateway connections start here)")
                await self._hook(self._on_elected, "starting the gateway connections")
            elif not held and self._leading:
                await self._depose()
            return self._leading

    async def run(self, stop: asyncio.Event) -> None:
        """Follow or lead until ``stop``; a lost lock deposes at once, and the deposed
        replica follows for a retry interval before it tries again (a healthy follower
        takes over first)."""
        while not stop.is_set():
            try:
                await self.step()
            except Exception:
                log.exception("leadership: a try failed; trying again")
            await self._pause(stop, watch_lock=self._leading)
            if self._leading and not self._lock.held:
                async with self._turn:
                    await self._depose()
                await self._pause(stop, watch_lock=False)

    async def _pause(self, stop: asyncio.Event, *, watch_lock: bool) -> None:
        """A retry interval, cut short by ``stop`` (or the loss of a held lock)."""
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if watch_lock:
            waits.append(asyncio.create_task(self._lock.lost()))
        try:
            await asyncio.wait(waits, timeout=self._retry, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def resign(self) -> None:
        """Stop the gateways (if leading) and release the lock, at shutdown."""
        async with self._turn:
            self._resigned = True
            if self._leading:
                await self._depose(why="this replica is stopping")
            with contextlib.suppress(Exception):
                await self._lock.release()

    async def _depose(self, *, why: str = "") -> None:
        if not self._leading:
            return
        self._leading = False
        if why:
            log.info("leadership: %s; stopping its gateway connections", why)
        else:
            log.warning("leadership: lost; this replica stops its gateway connections")
        await self._hook(self._on_deposed, "stopping the gateway connections")

    @staticmethod
    async def _hook(hook: Hook, what: str) -> None:
        try:
            await hook()
        except Exception:
            log.exception("leadership: %s failed", what)
