"""Live updates: every item change is pushed to open pages as a server-sent event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

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
