"""Change notices, so a long-polling reader or an open page wakes as soon as an item changes.

Changes made here are announced to local waiters and listeners and handed to the
publishers (on PostgreSQL: NOTIFY, :mod:`storage.pg_notify`); changes other replicas
announce arrive through :meth:`Notifier.received` and are never passed on again. Readers
also re-check the database at a short interval, which covers a notice that was missed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable


class Notifier:
    def __init__(self) -> None:
        self._events: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._listeners: list[Callable[[str], None]] = []
        self._publishers: list[Callable[[str], None]] = []

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(item_id)`` on every change (e.g. to push live page updates)."""
        self._listeners.append(listener)

    def publish_to(self, publisher: Callable[[str], None]) -> None:
        """Also tell other processes (``publisher(item_id)``) of every change made here."""
        self._publishers.append(publisher)

    def changed(self, item_id: str) -> None:
        """``item_id`` changed in this process (after the commit)."""
        self.received(item_id)
        for publisher in self._publishers:
            publisher(item_id)

    def received(self, item_id: str) -> None:
        """Another process changed ``item_id``: wake who waits here, pass nothing on."""
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
