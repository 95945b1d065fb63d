"""In-process change notices, so a long-polling reader wakes as soon as an item changes.

Replicas do not share these; readers also re-check the database at a short interval.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self._events: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def changed(self, item_id: str) -> None:
        for event in self._events.pop(item_id, set()):
            event.set()

    async def wait(self, item_id: str, *, within: float) -> bool:
        """Wait until ``item_id`` changes or ``within`` seconds pass; True if it changed."""
        event = asyncio.Event()
        self._events[item_id].add(event)
        try:
            async with asyncio.timeout(within):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._events.get(item_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._events[item_id]
