"""Live updates: every item change is pushed to open pages as a server-sent event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from storage import items as item_store
from storage.db import SessionFactory

log = logging.getLogger("signoff.web")

_CLOSED = ""


class Broadcaster:
    """Fans item-change notices out to every connected page (each with its own queue)."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self._queues: set[asyncio.Queue[str]] = set()
        self._size = queue_size

    def publish(self, item_id: str) -> None:
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):  # a stalled page misses a notice
                queue.put_nowait(item_id)

    def close(self) -> None:
        """End every stream (at shutdown)."""
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(_CLOSED)

    async def stream(self, *, keepalive: float = 15.0) -> AsyncIterator[str]:
        """SSE text: an ``item`` event per change, a comment line to keep proxies open."""
        queue: asyncio.Queue[str] = asyncio.Queue(self._size)
        self._queues.add(queue)
        try:
            yield "retry: 1000\n\n"
            while True:
                try:
                    item_id = await asyncio.wait_for(queue.get(), timeout=keepalive)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if item_id == _CLOSED:
                    return
                yield f'event: item\ndata: {{"id": "{item_id}"}}\n\n'
        finally:
            self._queues.discard(queue)


class ChangeWatcher:
    """Publishes item changes made by other processes (another replica, the CLI), which
    the in-process notifier never hears of, by polling ``items.updated_at``.

    Timestamps are taken before commit, so a change can land with a time just before
    the last one seen; the window overlaps by ``overlap`` seconds and remembers what it
    already published.
    """

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        broadcaster: Broadcaster,
        interval: float = 1.0,
        overlap: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._broadcaster = broadcaster
        self._interval = interval
        self._overlap = timedelta(seconds=overlap)
        self._seen: dict[tuple[str, datetime], datetime] = {}
        self._since: datetime | None = None

    async def poll(self) -> int:
        """Publish what changed since the last poll; return how many items."""
        async with self._sessions() as session:
            if self._since is None:
                self._since = await item_store.last_change(session) or datetime(
                    2000, 1, 1, tzinfo=UTC
                )
                return 0
            changed = await item_store.changed_since(session, since=self._since - self._overlap)
        fresh = [(item_id, at) for item_id, at in changed if (item_id, at) not in self._seen]
        for item_id, at in fresh:
            self._seen[(item_id, at)] = at
            self._broadcaster.publish(item_id)
        if changed:
            self._since = max(self._since, changed[-1][1])
        horizon = self._since - self._overlap
        self._seen = {key: at for key, at in self._seen.items() if at >= horizon}
        return len(fresh)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except Exception:
                log.exception("watching for item changes failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
