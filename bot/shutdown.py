"""Graceful shutdown of one replica, within ``SIGNOFF_SHUTDOWN_GRACE_SECONDS``.

On SIGTERM (uvicorn turns it into the lifespan's shutdown) a replica:

1. stops taking work at once: the release worker claims no new rows, the scheduler starts
   no new sweep, the gateway connections stop and the leader lock is released, so another
   replica takes them over;
2. lets what it claimed finish until the drain deadline (the grace period less a small
   reserve for the steps below), while uvicorn lets open requests finish in the same
   window (its ``timeout_graceful_shutdown``);
3. cancels what is still running and hands its claims back (outbox rows, sweep steps),
   so another replica takes them at once rather than when their leases run out;
4. closes its connections and exits.

Claims have leases in any case: a replica killed before step 3 loses nothing, its rows
are only taken over later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.leader import LeaderElector
    from bot.release import ReleaseWorker
    from bot.sweep import Sweeper

log = logging.getLogger("signoff.shutdown")


def drain_seconds(grace_seconds: float) -> float:
    """How much of the grace period in-flight work gets; the rest (up to 2 s) is kept for
    handing claims back and closing connections."""
    return max(0.0, grace_seconds - min(2.0, grace_seconds / 4))


class Shutdown:
    """One replica's stop: ``begin`` (idempotent) marks the start and sets ``stopping``;
    ``settle`` waits for work until the drain deadline and cancels what is left."""

    def __init__(
        self, *, grace_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.grace_seconds = grace_seconds
        self.stopping = asyncio.Event()
        self._monotonic = monotonic
        self._deadline: float | None = None
        self._hooks: list[Callable[[], None]] = []

    def on_begin(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the shutdown begins (at once if it has)."""
        if self.stopping.is_set():
            hook()
        else:
            self._hooks.append(hook)

    def begin(self) -> None:
        """Stop taking work; the drain deadline starts now. Safe to call more than once."""
        if self.stopping.is_set():
            return
        self._deadline = self._monotonic() + drain_seconds(self.grace_seconds)
        self.stopping.set()
        log.info("shutting down: finishing claimed work for up to %.1fs", self.remaining())
        for hook in self._hooks:
            try:
                hook()
            except Exception:
                log.exception("a shutdown hook failed")

    def remaining(self) -> float:
        """Seconds left until the drain deadline (the full drain time before ``begin``)."""
        if self._deadline is None:
            return drain_seconds(self.grace_seconds)
        return max(0.0, self._deadline - self._monotonic())

    async def settle(
        self, tasks: Iterable[asyncio.Task[None]], *, idle: Iterable[Awaitable[object]] = ()
    ) -> int:
        """Wait until ``tasks`` end and ``idle`` waits return, or the drain deadline passes;
        then cancel the tasks still running and wait for them to unwind. How many tasks
        were cancelled."""
        self.begin()
        tasks = [t for t in tasks if not t.done()]
        waits = [asyncio.ensure_future(w) for w in idle]
        pending = [*tasks, *waits]
        if pending:
            await asyncio.wait(pending, timeout=self.remaining())
        for wait in waits:
            wait.cancel()
        late = [t for t in tasks if not t.done()]
        for task in late:
            task.cancel()
        if late:
            log.warning("shutdown: %d task(s) still working at the deadline; cancelled", len(late))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a cancelled task unwinds at its next await
                    await asyncio.gather(*late, return_exceptions=True)
        return len(late)


async def wind_down(
    *,
    shutdown: Shutdown,
    leader: LeaderElector,
    background: Sequence[asyncio.Task[None]],
    work: Sequence[asyncio.Task[None]],
    worker: ReleaseWorker | None,
    sweeper: Sweeper | None,
    stop_scheduler: Callable[[], None] | None,
) -> None:
    """The lifespan's shutdown of a replica, steps 1-3 above: ``background`` tasks end as
    soon as ``stopping`` is set; ``work`` (the release worker) and a sweep under way get
    until the drain deadline; what they leave claimed is handed back."""
    shutdown.begin()
    # Bounded: a database that does not answer must not eat the grace period.
    await _within(asyncio.gather(*background, return_exceptions=True), seconds=1.0)
    await _within(leader.resign(), seconds=3.0)  # another replica takes the gateways now
    idle = [sweeper.idle()] if sweeper is not None and stop_scheduler is not None else []
    await shutdown.settle(work, idle=idle)
    swept = True
    if stop_scheduler is not None:
        stop_scheduler()  # cancels a sweep still running
        swept = sweeper is None or await _within(sweeper.idle(), seconds=1.0)
    try:
        # Only what has stopped is handed back: a task still unwinding keeps its leases.
        if worker is not None and all(task.done() for task in work):
            await worker.hand_back()
        if sweeper is not None and swept:
            await sweeper.hand_back()
    except Exception:
        log.exception("handing claims back failed; their leases run out instead")


async def _within(wait: Awaitable[object], *, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await wait
    except TimeoutError:
        return False
    return True
