"""Database connection: one async SQLAlchemy engine (asyncpg) per process.

`Database.open(url)` accepts any Postgres URL spelling (`postgres://`, `postgresql://`,
`postgresql+asyncpg://`, `postgresql+psycopg://`) and hands each library the form it wants.

Usage::

    db = await Database.open("postgresql://postgres@127.0.0.1:5432/larkops")
    async with db.session() as session:
        ...
    await db.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_

from storage.autocommit import Autocommit
from storage.jsontext import dumps

DRIVER = "larkops_asyncpg"  # asyncpg, closing the pool's surplus connections aside (below)
CLOSE_PATIENCE = 2.0  # seconds a closing connection waits for the server's goodbye, then aborts


def driver_url(url: str, driver: str) -> str:
    """`url` with the SQLAlchemy driver set (`asyncpg`, `psycopg`) or removed (`""`)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    name = f"postgresql+{driver}" if driver else "postgresql"
    return parsed.set(drivername=name).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Database:
    """The engine and session factory, and `autocommit` for the single statements that need
    no transaction (`storage.autocommit`); cheap to pass around."""

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    autocommit: Autocommit

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> Database:
        settings = {"server_settings": {"application_name": "larkops"}, "timeout": 10}
        engine = create_async_engine(
            driver_url(url, DRIVER),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args=settings,
            json_serializer=dumps,
        )
        event.listen(engine.sync_engine.pool, "checkout", _checked_out)
        _, connect = engine.dialect.create_connect_args(engine.url)
        # SQLAlchemy's own keywords: its statement cache size (0 behind a pooler that cannot
        # keep prepared statements) is asyncpg's
        connect.pop("prepared_statement_name_func", None)
        if "prepared_statement_cache_size" in connect:
            connect["statement_cache_size"] = connect.pop("prepared_statement_cache_size")
        return cls(
            url=url,
            engine=engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            autocommit=Autocommit({**connect, **settings}),
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.autocommit.close()
        await self.engine.dispose()
        dialect = self.engine.dialect
        if isinstance(dialect, QuietCloseDialect) and dialect.closing:
            await asyncio.wait(dialect.closing)


class QuietCloseDialect(PGDialect_asyncpg):
    """asyncpg, except that a connection the pool closes (one handed back beyond the pool's
    size, or at `dispose`) is closed in a task of its own instead of in the task handing it
    back. That task's work is done; it should neither wait for the server's goodbye nor be
    interrupted in it: a cancellation arriving there (a `stop()`, a timeout) broke the close
    off, and SQLAlchemy logged "Exception closing connection" with the `CancelledError` as an
    ERROR (tests/lark/test_commands.py::test_stopping_logs_no_error failed so in CI).
    `Database.close` waits for the closes still under way."""

    supports_statement_cache = True  # as its parent's: every dialect class must say so

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # (SQLAlchemy untyped)
        self.closing: set[asyncio.Task[None]] = set()

    def do_close(self, dbapi_connection: Any) -> None:
        connection: asyncpg.Connection = dbapi_connection.driver_connection
        try:
            task = asyncio.get_running_loop().create_task(_close(connection))
        except RuntimeError:  # no loop left to say goodbye on
            connection.terminate()
            return
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)


async def _close(connection: asyncpg.Connection) -> None:
    # asyncpg aborts the connection when it cannot close it in time (or at all): either way
    # it is closed, and the pool has already forgotten it
    with contextlib.suppress(Exception):
        await connection.close(timeout=CLOSE_PATIENCE)


registry.register(f"postgresql.{DRIVER}", __name__, QuietCloseDialect.__name__)


def _checked_out(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Pre-ping, cheaply: replace a connection whose server is gone (the pool retries with a
    fresh one on `DisconnectionError`). SQLAlchemy's `pool_pre_ping` is a transaction of its
    own (BEGIN, ";", ROLLBACK), three round trips and a transaction more for every session:
    half the statements Postgres ran in an alert storm (issue 22). An empty statement is one
    round trip outside any transaction, and still fails on a connection whose server went
    away, also when asyncpg has read the backend's FATAL but not yet its end of file (a
    restart, `pg_terminate_backend`; checking for a recently used connection's closed socket
    alone missed that under load)."""
    driver = record.driver_connection
    if driver is None or driver.is_closed():
        raise exc.DisconnectionError("connection closed")
    try:
        await_(driver.fetchrow(";"))
    except Exception as error:
        raise exc.DisconnectionError(f"ping failed: {error}") from error
