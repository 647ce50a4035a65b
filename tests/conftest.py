"""Shared fixtures: a real embedded Postgres (one per test session) and the real Redis.

Redis is required: when it cannot be reached the tests that need it fail (never skip), with a
message saying how to start it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from storage.database import Database
from storage.embedded import EmbeddedPostgres

REDIS_URL = os.environ.get("LARKOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
    """One embedded Postgres for the whole run (fsync off: test data is disposable)."""
    home = Path(tempfile.mkdtemp(prefix="larkops-test-pg-"))
    server = EmbeddedPostgres(home, fsync=False)
    server.start()
    yield server
    server.release()


@pytest.fixture
def fresh_db_url(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A new, empty database on the session server; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_server.dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def fresh_db(fresh_db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(fresh_db_url, pool_size=2)
    yield database
    await database.close()


@pytest.fixture
async def migrated_db(fresh_db: Database) -> Database:
    from storage.migration import upgrade

    await upgrade(fresh_db)
    return fresh_db
