"""Background runs under a database lease, for drafting tasks and redrafts: started after
an acknowledgement, waited for in tests, stopped and handed back at shutdown.

The lease itself lives in the database; this keeps what the process needs to know: which
runs are in flight here, so shutdown can end exactly their leases.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


class LeasedRuns:
    """Runs ``run(key)`` in the background; a crash is logged (the lease lets another
    pass retry it), never raised."""

    def __init__(self, *, run: Callable[[str], Awaitable[None]], log: logging.Logger, what: str):
        self._run = run
        self._log = log
        self._what = what  # "task %s: drafting", for the crash log line
        self._jobs: set[asyncio.Task[None]] = set()
        self._held: set[str] = set()  # keys being run in this process now

    def start(self, key: str) -> None:
        """Run ``key`` in the background."""
        job = asyncio.get_running_loop().create_task(self.guarded(key))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def guarded(self, key: str) -> None:
        """Run ``key`` here and now, logging a crash."""
        self._held.add(key)
        try:
            await self._run(key)
        except Exception:
            self._log.exception("%s crashed", self._what % key)
        finally:
            self._held.discard(key)

    async def drain(self) -> None:
        """Wait for the runs started in this process (tests, shutdown)."""
        while self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)

    async def stop(self) -> set[str]:
        """Cancel every run in flight here; the keys they held (to hand back)."""
        held = set(self._held)
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*list(self._jobs), return_exceptions=True)
        return held
