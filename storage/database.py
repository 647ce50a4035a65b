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

import select
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# a connection back in the pool for longer than this is pinged before it is handed out; one
# used more recently is only checked for a closed socket (asyncpg sees the server go away). A
# ping is a transaction of its own (BEGIN, ";", ROLLBACK): pinging every checkout made it four
# round trips and two transactions per query, most of the statements of an alert storm (issue 22)
PING_IDLE = 2.0
_RETURNED = "larkops_returned_at"


def driver_url(url: str, driver: str) -> str:
    """`url` with the SQLAlchemy driver set (`asyncpg`, `psycopg`) or removed (`""`)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    name = f"postgresql+{driver}" if driver else "postgresql"
    return parsed.set(drivername=name).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Database:
    """The engine and session factory; cheap to pass around."""

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> Database:
        engine = create_async_engine(
            driver_url(url, "asyncpg"),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args={"server_settings": {"application_name": "larkops"}, "timeout": 10},
        )
        event.listen(engine.sync_engine.pool, "checkin", _returned)
        event.listen(engine.sync_engine.pool, "checkout", _checked_out)
        return cls(
            url=url, engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False)
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
        await self.engine.dispose()


def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_RETURNED] = time.monotonic()


def _checked_out(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Pre-ping, cheaply: a closed connection is replaced (the pool retries with a fresh one
    on `DisconnectionError`); one idle long enough to have been dropped unseen, or whose
    server said something while it was idle (a terminated backend's FATAL, its end of
    file, not yet read by the event loop), is pinged first."""
    driver = record.driver_connection
    if driver is None or driver.is_closed():
        raise exc.DisconnectionError("connection closed")
    returned = record.info.get(_RETURNED)
    if returned is not None and time.monotonic() - returned < PING_IDLE and not _spoke(driver):
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise exc.DisconnectionError(f"ping failed: {error}") from error


def _spoke(driver: Any) -> bool:
    """Whether the server sent anything the connection has not read (an idle connection's
    server only does so to say it is going away); True when that cannot be told."""
    try:
        sock = driver._transport.get_extra_info("socket")  # asyncpg keeps no public accessor
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
    except Exception:
        return True
    return bool(readable)
