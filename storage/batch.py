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
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect as sa_inspect
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
        # A caller that gives up cancels only its own wait: the batch goes on.
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                await self._commit([rows for rows, _ in batch])
            except Exception:
                for rows, done in batch:
                    await self._alone(rows, done)
                continue
            except BaseException:  # cancelled (shutdown): nobody may wait forever
                for _, done in [*batch, *self._queue]:
                    done.cancel()
                self._queue = []
                raise
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _alone(self, rows: Sequence[SQLModel], done: asyncio.Future[None]) -> None:
        try:
            await self._commit([rows])
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(None)

    async def _commit(self, groups: list[Sequence[SQLModel]]) -> None:
        # A Core executemany per table, parents first: the ORM's unit of work would not
        # order tables without relationships, and its per-row bookkeeping was the largest
        # single cost of ingest (see BENCHMARKS.md).
        by_table: dict[str, list[SQLModel]] = {}
        for rows in groups:
            for row in rows:
                by_table.setdefault(str(getattr(row, "__tablename__", "")), []).append(row)
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            for table in SQLModel.metadata.sorted_tables:
                same = by_table.pop(table.name, [])
                if same:
                    columns = _column_map(type(same[0]))
                    await connection.execute(
                        table.insert(), [_values(row, columns) for row in same]
                    )
            if by_table:
                raise ValueError(f"not tables of this schema: {', '.join(by_table)}")


@functools.cache
def _column_map(model: type[SQLModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, column) pairs of a table model; they differ where a column's name is
    taken by SQLModel itself (``Item.meta`` is the ``metadata`` column)."""
    return tuple((a.key, a.columns[0].name) for a in sa_inspect(model).column_attrs)


def _values(row: SQLModel, columns: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    values = {column: getattr(row, attr) for attr, column in columns}
    if values.get("id", 0) is None:
        del values["id"]  # autoincrement
    return values
