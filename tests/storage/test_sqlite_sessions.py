"""SQLite sessions: reads never wait for the write lock, and one process's writers take
turns in arrival order (storage/sqlite_turns.py) instead of racing in SQLite's busy
handler."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Result, event, text
from sqlalchemy.exc import OperationalError, SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import make_engine, read_session_factory, session_factory
from storage.sqlite_turns import WriterTurns


async def run(session: AsyncSession, sql: str, **params: object) -> Result[Any]:
    """A statement through the session's connection (and its transaction)."""
    connection = await session.connection()
    return await connection.execute(text(sql), params)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(
        f"sqlite+aiosqlite:///{tmp_path}/turns.db", sqlite_turns=WriterTurns(timeout=1.0)
    )
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE log (n INTEGER)"))
    yield engine
    await engine.dispose()


async def test_a_read_session_reads_while_a_writer_holds_the_lock(engine: AsyncEngine) -> None:
    writes, reads = session_factory(engine), read_session_factory(engine)
    async with writes() as writer, writer.begin():
        await run(writer, "INSERT INTO log VALUES (1)")  # lock held, not committed
        async with reads() as reader:
            seen = (await run(reader, "SELECT count(*) FROM log")).scalar_one()
        assert seen == 0  # the committed snapshot, at once, without waiting for the writer


async def test_a_write_through_a_read_session_fails_instead_of_waiting(
    engine: AsyncEngine,
) -> None:
    async with read_session_factory(engine)() as reader, reader.begin():
        await run(reader, "SELECT count(*) FROM log")
        async with session_factory(engine)() as writer, writer.begin():
            await run(writer, "INSERT INTO log VALUES (1)")
        with pytest.raises(OperationalError, match=r"locked|busy|snapshot"):
            await run(reader, "INSERT INTO log VALUES (2)")


async def test_writers_commit_in_the_order_they_asked(engine: AsyncEngine) -> None:
    writes, reads = session_factory(engine), read_session_factory(engine)

    async def warm() -> None:  # five pooled connections, so no writer waits to connect
        async with reads() as session:
            await run(session, "SELECT 1")
            await asyncio.sleep(0.05)

    await asyncio.gather(*(warm() for _ in range(5)))
    asked: list[int] = []

    async def write(n: int) -> None:
        async with writes() as session, session.begin():
            asked.append(n)
            await run(session, "INSERT INTO log VALUES (:n)", n=n)
            await asyncio.sleep(0.01)  # the others ask while this one holds the lock

    for _ in range(10):
        await asyncio.gather(*(write(n) for n in range(5)))
    async with reads() as session:
        order = (await run(session, "SELECT n FROM log ORDER BY rowid")).scalars()
        assert list(order) == asked == list(range(5)) * 10


async def test_a_failed_transaction_hands_the_turn_on(engine: AsyncEngine) -> None:
    writes = session_factory(engine)
    with pytest.raises(OperationalError):
        async with writes() as session, session.begin():
            await run(session, "INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(RuntimeError):
        async with writes() as session, session.begin():
            await run(session, "INSERT INTO log VALUES (1)")
            raise RuntimeError("the caller gave up half way")
    async with writes() as session:  # no explicit transaction: autobegin, then close
        await run(session, "INSERT INTO log VALUES (2)")
    async with asyncio.timeout(5):  # the turn is free again: this does not wait
        async with writes() as session, session.begin():
            await run(session, "INSERT INTO log VALUES (3)")
    async with read_session_factory(engine)() as session:
        assert (await run(session, "SELECT n FROM log")).scalars().all() == [3]


async def test_a_writer_nested_in_another_fails_after_the_timeout(engine: AsyncEngine) -> None:
    writes = session_factory(engine)
    async with writes() as outer, outer.begin():
        await run(outer, "INSERT INTO log VALUES (1)")
        with pytest.raises(OperationalError, match="no turn to write within 1 s"):
            async with writes() as inner, inner.begin():
                await run(inner, "INSERT INTO log VALUES (2)")
    async with read_session_factory(engine)() as session:
        assert (await run(session, "SELECT n FROM log")).scalars().all() == [1]


async def test_the_turn_passes_on_only_once_the_commit_has_run(tmp_path: Path) -> None:
    """Without SQLite's busy handler (busy_timeout 0), a writer that got its turn while
    the previous COMMIT was still running would fail with "database is locked"."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/busy0.db")

    @event.listens_for(engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE log (n INTEGER)"))
    writes = session_factory(engine)

    async def write(n: int) -> None:
        async with writes() as session, session.begin():
            await run(session, "INSERT INTO log VALUES (:n)", n=n)

    try:
        for _ in range(30):
            await asyncio.gather(*(write(n) for n in range(8)))
    finally:
        await engine.dispose()


async def test_a_writer_cancelled_mid_statement_raises_cancelled_and_frees_the_turn(
    tmp_path: Path,
) -> None:
    turns = WriterTurns(timeout=1.0)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/cancel.db", sqlite_turns=turns)
    writes = session_factory(engine)
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
        "SELECT count(*) FROM c"
    )

    async def holder() -> None:
        async with writes() as session, session.begin():
            await run(session, slow)

    try:
        task = asyncio.create_task(holder())
        await asyncio.sleep(0.05)
        assert turns.holders() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # not an error of the turn's bookkeeping
            await task
        assert turns.holders() == 0
    finally:
        await engine.dispose()


async def test_a_connection_left_unclosed_gives_its_turn_back_when_collected(
    engine: AsyncEngine,
) -> None:
    forgotten = await engine.connect()
    await forgotten.begin()
    await forgotten.execute(text("INSERT INTO log VALUES (1)"))
    del forgotten  # never committed, rolled back or closed
    with pytest.warns(SAWarning, match="non-checked-in connection"):
        gc.collect()  # SQLAlchemy says so, and ends the connection
    await asyncio.sleep(0.1)
    async with session_factory(engine)() as session, session.begin():  # within the 1 s
        await run(session, "INSERT INTO log VALUES (2)")
