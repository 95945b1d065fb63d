"""In-process change notices, so a long-polling reader wakes as soon as an item changes.

Replicas do not share these; readers also re-check the database at a short interval.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable


class Notifier:
    def __init__(self) -> None:
        self._events: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._listeners: list[Callable[[str], None]] = []

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(item_id)`` on every change (e.g. to push live page updates)."""
        self._listeners.append(listener)

    def changed(self, item_id: str) -> None:
        for event in self._events.pop(item_id, set()):
            event.set()
        for listener in self._listeners:
            listener(item_id)

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
