"""Engines and sessions.

SQLite runs in WAL mode, and every transaction starts with ``BEGIN IMMEDIATE`` so that
a read-then-write transaction never fails half way on a lock it cannot upgrade; a
process's writers queue for it in arrival order (storage/sqlite_turns.py), other
processes' on the busy timeout. Sessions that only read (``read_session_factory``)
start with a plain ``BEGIN``: in WAL mode they read a snapshot without taking the write
lock, so a click's or a page's reads never wait behind a commit. PostgreSQL needs
nothing special: conditional updates and ``FOR UPDATE SKIP LOCKED`` do the coordination.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event, literal
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.sqlite_turns import WriterTurns

SessionFactory = async_sessionmaker[AsyncSession]

_READS_ONLY = "signoff_reads_only"


def make_engine(
    url: str, *, sqlite_synchronous: str = "NORMAL", sqlite_turns: WriterTurns | None = None
) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite://…`` or ``postgresql+asyncpg://…``)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine, synchronous=sqlite_synchronous, turns=sqlite_turns)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine, *, synchronous: str, turns: WriterTurns | None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    turns = turns or WriterTurns()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_READS_ONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        turns.take(dbapi_connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turns.hand_on(dbapi_connection)
            raise

    # The turn passes on once COMMIT or ROLLBACK has run on the driver's thread (the
    # engine's commit and rollback events fire before it, and the next writer would
    # meet the lock still held). The pool's reset on return rolls back through here too.
    dialect = engine.sync_engine.dialect
    for name in ("do_commit", "do_rollback"):
        setattr(dialect, name, _then_hand_on(getattr(dialect, name), turns))

    # Whatever became of the transaction (a cancelled or broken connection, one the
    # garbage collector found unclosed), a connection leaving use holds no turn.
    @event.listens_for(engine.sync_engine.pool, "checkin")
    @event.listens_for(engine.sync_engine.pool, "invalidate")
    @event.listens_for(engine.sync_engine.pool, "soft_invalidate")
    @event.listens_for(engine.sync_engine.pool, "detach")
    @event.listens_for(engine.sync_engine.pool, "close")
    @event.listens_for(engine.sync_engine.pool, "close_detached")
    def _on_release(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            turns.hand_on(dbapi_connection)


def _then_hand_on(end: Callable[[Any], None], turns: WriterTurns) -> Callable[[Any], None]:
    """``end`` (the dialect's commit or rollback), then the next writer's turn."""

    def run(connection: Any) -> None:  # the pool's proxy of the DBAPI connection
        try:
            end(connection)
        finally:
            turns.hand_on(getattr(connection, "dbapi_connection", connection))

    return run


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions for code that only reads: on SQLite they do not take the write lock (a
    write through one fails rather than waits). On PostgreSQL the same as
    ``session_factory``."""
    return session_factory(engine.execution_options(**{_READS_ONLY: True}))


async def ping(session: AsyncSession) -> None:
    """Raise unless the database answers."""
    await session.exec(select(literal(1)))
