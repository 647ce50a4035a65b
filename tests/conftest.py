"""Shared fixtures: every test gets its own world.

A test names `world` (or a fixture built on it, such as `migrated_db` or `make_testbot`) and gets
a database of its own on the worker's embedded Postgres (created from a migrated template, so
it costs one `CREATE DATABASE`), a Redis key prefix of its own on the real Redis (its keys are
deleted afterwards), and a temporary directory. Nothing a test leaves behind reaches the next:
asyncio tasks a test started and did not stop are cancelled when it ends, and named in a
warning.

Redis is required: when it cannot be reached the tests that need it fail (never skip), with a
message saying how to start it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import structlog

from storage.coordination import Coordination, open_coordination
from storage.database import Database
from storage.embedded import EmbeddedPostgres

REDIS_URL = os.environ.get("LARKOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEMPLATE = "larkops_migrated_template"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is required at {REDIS_URL} ({exc}); start it with "
            "`redis-server --daemonize yes` or set LARKOPS_TEST_REDIS_URL",
            pytrace=False,
        )
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """One embedded Postgres per test worker (fsync off: test data is disposable)."""
    home = Path(tempfile.mkdtemp(prefix="larkops-test-pg-"))
    server = EmbeddedPostgres(home, fsync=False)
    server.start()
    yield server
    server.release()


def _admin_dsn(server: EmbeddedPostgres) -> str:
    return server.dsn.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(scope="session")
def migrated_template(pg_server: EmbeddedPostgres) -> str:
    """A database at the head migration, cloned by every test that wants a migrated one."""
    import asyncio as _asyncio

    from storage.migration import upgrade

    with psycopg.connect(_admin_dsn(pg_server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    url = pg_server.dsn.rsplit("/", 1)[0] + f"/{TEMPLATE}"

    async def migrate() -> None:
        database = await Database.open(url, pool_size=1)
        try:
            await upgrade(database)
        finally:
            await database.close()

    # a thread of its own: the session's event loop may already be running this fixture's caller
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(_asyncio.run, migrate()).result()
    return TEMPLATE


@pytest.fixture
def fresh_db_url(pg_server: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own on the worker's server; dropped afterwards. Migrated
    (cloned from the template) when the test also asks for `migrated_db`, else empty."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn(pg_server)
    clone = ""
    if "migrated_db" in request.fixturenames:
        clone = f' TEMPLATE "{request.getfixturevalue("migrated_template")}"'
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{clone}')
    yield pg_server.dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def fresh_db(fresh_db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(fresh_db_url, pool_size=2)
    yield database
    await database.close()


@pytest.fixture
async def migrated_db(fresh_db: Database, _no_stray_tasks: None) -> Database:
    from storage.migration import upgrade

    await upgrade(fresh_db)  # a no-op: the database was cloned from the migrated template
    return fresh_db


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass
class World:
    """What one test owns: its database (migrated), Redis prefix and directory."""

    db: Database
    db_url: str
    redis_url: str
    prefix: str
    tmp: Path

    async def coordination(self) -> Coordination:
        """A real Redis coordination under this test's prefix (closed by the caller)."""
        return await open_coordination(self.redis_url, self.prefix)


@pytest.fixture(autouse=True)
def _plain_tracebacks() -> None:
    """Log lines as structlog prints them by default, but tracebacks without their frames'
    locals: rendering the locals of a failing handler (settings, routers) took seconds on a
    loaded machine and held up the reply a test was waiting for. The app configures its own
    logging (`bot.logs`), which never prints locals."""
    if not structlog.is_configured():
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.StackInfoRenderer(),
                structlog.dev.set_exc_info,
                structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
                structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
            ]
        )


@pytest.fixture
def world(
    migrated_db: Database, fresh_db_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> World:
    """This test's own world: `async def test_x(world: World)`."""
    return World(migrated_db, fresh_db_url, redis_url, redis_prefix, tmp_path)


@pytest.fixture
async def _no_stray_tasks(
    request: pytest.FixtureRequest, fresh_db: Database
) -> AsyncIterator[None]:
    """Cancel the asyncio tasks a test started and left running (before its database goes),
    so a loop of one test's bot (a sweep, a scheduler, a worker) can never act while the next
    test runs."""
    before = set(asyncio.all_tasks())
    yield
    stray = [task for task in asyncio.all_tasks() if task not in before and not task.done()]
    stray = [task for task in stray if task is not asyncio.current_task()]
    if not stray:
        return
    for task in stray:
        task.cancel()
    await asyncio.gather(*stray, return_exceptions=True)
    names = sorted({getattr(task.get_coro(), "__qualname__", task.get_name()) for task in stray})
    warnings.warn(
        f"{request.node.nodeid} left {len(stray)} task(s) running: {', '.join(names)}",
        stacklevel=1,
    )


# Suites whose tests run for many seconds each (subprocesses, kills, outages): started first, so
# parallel workers do not end with one of them alone on the clock.
_SLOW_FIRST = ("replicas", "faults", "e2e", "browser", "integration", "plugins")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def weight(item: pytest.Item) -> int:
        parts = Path(str(item.fspath)).parts
        for rank, suite in enumerate(_SLOW_FIRST):
            if suite in parts:
                return rank
        return len(_SLOW_FIRST)

    items.sort(key=weight)  # stable: the order within a suite is kept
