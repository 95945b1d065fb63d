"""Shared fixtures: a database per test on SQLite and PostgreSQL, and a wired system.

PostgreSQL: one fresh database per test run on 127.0.0.1:5432, a clean schema per test.
In CI (``CI`` set) an unreachable PostgreSQL fails the run; on a laptop it skips with
the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from bot.app import System, build
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.routes import RouteTable, parse_routes
from bot.settings import load_settings
from storage.migrate import upgrade
from tests.fakes.surface import RecordingSurface

# Fails the run when a secret reaches a log record or process output (issue 11).
pytest_plugins = ["tests.secrets_scan"]

PG_DSN = os.environ.get("SIGNOFF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = bool(os.environ.get("CI"))

for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(var, None)
for var in [k for k in os.environ if k.startswith("SIGNOFF_") and k != "SIGNOFF_TEST_PG"]:
    os.environ.pop(var)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run; its SQLAlchemy URL."""
    yield from _fresh_database()


@pytest.fixture(scope="module")
def pg_module_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, empty; its SQLAlchemy URL (for
    replicas under test: advisory locks and NOTIFY channels are per database)."""
    yield from _fresh_database()


def _fresh_database() -> Iterator[str]:
    name = f"signoff_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL is not reachable at {PG_DSN}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI must run the PostgreSQL suite)", pytrace=False)
        pytest.skip(message + " (skipped outside CI; start PostgreSQL to run these)")
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A clean, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
    return _clean(request.getfixturevalue("pg_database"))


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A clean, empty PostgreSQL database (for tests that need PostgreSQL itself)."""
    return _clean(pg_database)


def _clean(url: str) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def reset() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
                "DROP FUNCTION IF EXISTS signoff_decisions_append_only() CASCADE;"
            )
        finally:
            await conn.close()

    asyncio.run(reset())
    return url


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/signoff.db"


ROUTES_YAML = {
    "routes": {
        "support": {
            "surfaces": [{"type": "web"}],
            "quorum": 1,
            "thresholds": {"auto_approve_at": 0.99, "auto_reject_below": 0.2},
            "reject_reasons": ["wrong facts", "wrong tone"],
            "target": {"type": "webhook", "url": "http://127.0.0.1:9/release"},
            "callback_hosts": ["127.0.0.1"],
            "allow_private_callbacks": True,
        },
        "pair": {
            "surfaces": [{"type": "web"}],
            "quorum": 2,
            "callback_hosts": ["127.0.0.1"],
            "allow_private_callbacks": True,
        },
        "strict": {
            "surfaces": [{"type": "web"}],
            "reviewers": {"web": ["lead", "agent"]},
            "reject_reasons": ["wrong"],
        },
        "selfok": {"surfaces": [{"type": "web"}], "allow_self_approval": True},
    }
}


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(ROUTES_YAML)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def surface() -> RecordingSurface:
    return RecordingSurface()


@pytest.fixture
async def system(
    db_url: str, routes: RouteTable, clock: FrozenClock, surface: RecordingSurface
) -> AsyncIterator[System]:
    sys_ = build(
        load_settings({"SIGNOFF_DATABASE_URL": db_url, "SIGNOFF_RELEASE_MAX_ATTEMPTS": "4"}),
        clock=clock,
        routes=routes,
        surfaces={"web": surface},
    )
    await upgrade(sys_.engine)
    try:
        yield sys_
    finally:
        await sys_.close()


@pytest.fixture
async def integrator(system: System) -> Integrator:
    key = await system.keys.create(name="agent")
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    return found
