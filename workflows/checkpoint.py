"""The LangGraph checkpointer: `AsyncPostgresSaver` on a psycopg pool, or start-up fails.

The pool is opened with `autocommit=True, prepare_threshold=0, row_factory=dict_row`, as the
saver needs (without autocommit its writes are never committed, and a project that missed it
silently ran on memory). Each connection is checked as it is taken from the pool, so the pool
heals after a Postgres restart. `open_checkpointer` runs the saver's own migrations and checks a
round trip; any failure raises `CheckpointerError`: there is no in-memory fallback. The
migrations run under a Postgres advisory lock: LangGraph's `setup()` is not safe to run twice at
once, and replicas starting together on a new database would otherwise fail on a duplicate
`checkpoint_migrations` key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from storage import checkpoints
from storage.database import driver_url

# why the checkpointer could not be set up
Failure = Literal["pool", "lock", "setup", "empty"]


class CheckpointerError(RuntimeError):
    """The workflow checkpointer could not be set up; the app must not start. `reason` says
    which part failed: the pool would not open, another process held the set-up lock too
    long, the saver's migrations failed, or they left no record; the message (for the
    operator's log) says more."""

    def __init__(self, reason: Failure, message: str) -> None:
        super().__init__(message)
        self.reason: Failure = reason


async def _take_setup_lock(
    conn: AsyncConnection[tuple[object, ...]], patience: float = 120
) -> None:
    """Hold the checkpoint-setup advisory lock on `conn`. Polled with short statements: a
    session blocked in `pg_advisory_lock` would keep a snapshot open, and the saver's
    `CREATE INDEX CONCURRENTLY` in the lock holder waits for every such snapshot (a deadlock
    Postgres does not detect)."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        if await checkpoints.try_setup_lock(conn):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise CheckpointerError(
                "lock", "another process held the checkpoint set-up lock too long"
            )
        await asyncio.sleep(0.2)


@asynccontextmanager
async def open_checkpointer(url: str, *, max_size: int = 10) -> AsyncIterator[AsyncPostgresSaver]:
    """A ready `AsyncPostgresSaver` for the database at `url` (any Postgres URL spelling)."""
    conninfo = driver_url(url, "")
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        # a connection is checked as it leaves the pool: after a Postgres restart the first
        # graph step gets a new one instead of failing and waiting for the sweep
        check=AsyncConnectionPool.check_connection,
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise CheckpointerError("pool", f"cannot open the checkpoint pool: {exc}") from exc
    try:
        saver = AsyncPostgresSaver(pool)
        try:
            async with await AsyncConnection.connect(conninfo, autocommit=True) as lock:
                await _take_setup_lock(lock)
                await saver.setup()  # the lock goes with the connection
            async with pool.connection() as conn:
                applied = await checkpoints.migrations_applied(conn)
            if applied == 0:
                raise CheckpointerError("empty", "the checkpoint tables are empty after setup")
        except CheckpointerError:
            raise
        except Exception as exc:
            raise CheckpointerError("setup", f"cannot set up the checkpoint tables: {exc}") from exc
        yield saver
    finally:
        await pool.close()
