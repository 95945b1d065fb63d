"""A database outage answers 503, not 500.

While PostgreSQL restarts (or is unreachable, or out of connections) a request that
needs the database cannot be served. That is a temporary state of the server, not a
bug: the answer is ``503 Service Unavailable`` with ``Retry-After``, so clients and load
balancers retry, and the log gets one line instead of a traceback. The connection pool
checks connections before use (``pool_pre_ping``), so when the database is back the
next request simply works; nothing needs restarting.

Which errors count: connection errors from the socket (refused, reset, a host name
that does not resolve), SQLite's "unable to open database file", SQLAlchemy
errors that invalidated their connection or timed out waiting for one, and PostgreSQL
errors of class 08 (connection exception), 57P01-57P03 (shutting down, starting up)
and 53300 (too many connections), wherever they sit in the exception's chain. Anything
else (a constraint violation, a bad query) is still a 500: that is a bug to see.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

log = logging.getLogger("signoff.api")

RETRY_AFTER_SECONDS = 2
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# asyncpg's own names for "the connection broke under this operation"; it raises the
# second when a connection is used again after an operation on it was cut off.
_DRIVER_DISCONNECTS = frozenset({"ConnectionDoesNotExistError", "InternalClientError"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error a SQLAlchemy error wraps, and their causes."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__]
        if isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, BaseException):
            nested.append(current.orig)
        todo.extend(e for e in nested if e is not None)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached right now."""
    for error in _chain(exc):
        if isinstance(error, ConnectionError | socket.gaierror | sa_exc.TimeoutError):
            return True
        if isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error):
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        kind = type(error)
        if kind.__module__.startswith("asyncpg") and kind.__name__ in _DRIVER_DISCONNECTS:
            return True
    return False


def unavailable_reason(exc: BaseException) -> str:
    """The lowest error of ``exc``'s chain, in one line: what the driver or the socket
    said (``ConnectionRefusedError: ...``), without SQLAlchemy's wrapping."""
    lowest = exc
    for error in _chain(exc):
        lowest = error
    text = " ".join(str(lowest).split()) or "no detail"
    return f"{type(lowest).__name__}: {text}"


def install_database_handlers(app: FastAPI) -> None:
    """Answer 503 for requests that failed because the database is unavailable."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # not an outage: a real error, answered 500 and logged in full
        log.warning(
            "%s %s: database unavailable (%s: %s); answered 503",
            request.method,
            request.url.path,
            type(exc).__name__,
            str(exc).splitlines()[0][:200] if str(exc) else "",
        )
        return JSONResponse(
            {
                "error": {
                    "code": "database_unavailable",
                    "message": "the database is unavailable right now; try again shortly",
                }
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for kind in (ConnectionError, sa_exc.DBAPIError, sa_exc.TimeoutError):
        app.add_exception_handler(kind, unavailable)
