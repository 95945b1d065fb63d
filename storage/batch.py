"""Group commit for inserts: many callers, one transaction.

Each caller hands over the rows of its own transaction and waits. A single drain task
inserts whatever has queued up in one transaction and one commit, so under load the
cost of BEGIN/COMMIT (and of SQLite's single writer lock) is shared by the whole batch;
alone, a caller's rows go in at once, with no added wait. If the batch fails (say a
unique key a caller raced for), each caller's rows are retried in a transaction of
their own, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from sqlmodel import SQLModel

from storage.db import SessionFactory

_Entry = tuple[Sequence[SQLModel], asyncio.Future[None]]


class GroupWriter:
    def __init__(self, *, sessions: SessionFactory, max_batch: int = 256) -> None:
        self._sessions = sessions
        self._max = max_batch
        self._queue: list[_Entry] = []
        self._drainer: asyncio.Task[None] | None = None

    async def insert(self, rows: Sequence[SQLModel]) -> None:
        """Insert ``rows`` atomically (all or none); returns once they are committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        await asyncio.shield(done)  # a caller that gives up does not abort the batch

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                await self._commit([rows for rows, _ in batch])
            except Exception:
                for rows, done in batch:
                    await self._alone(rows, done)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _alone(self, rows: Sequence[SQLModel], done: asyncio.Future[None]) -> None:
        for row in rows:  # ids the rolled-back batch handed out are not ours to keep
            if isinstance(getattr(row, "id", None), int):
                row.id = None
        try:
            await self._commit([rows])
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
            return
        with contextlib.suppress(asyncio.InvalidStateError):
            done.set_result(None)

    async def _commit(self, groups: list[Sequence[SQLModel]]) -> None:
        # Without ORM relationships the flush does not order tables by foreign key, so
        # flush table by table, parents first: one multi-row INSERT per table.
        by_table: dict[str, list[SQLModel]] = {}
        for rows in groups:
            for row in rows:
                by_table.setdefault(str(getattr(row, "__tablename__", "")), []).append(row)
        async with self._sessions() as session, session.begin():
            for table in SQLModel.metadata.sorted_tables:
                if table.name in by_table:
                    session.add_all(by_table.pop(table.name))
                    await session.flush()
            if by_table:
                raise ValueError(f"not tables of this schema: {', '.join(by_table)}")
