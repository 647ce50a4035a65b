"""The LangGraph checkpointer: `AsyncPostgresSaver` on a psycopg pool, or start-up fails.

The pool is opened with `autocommit=True, prepare_threshold=0, row_factory=dict_row`, as the
saver needs (without autocommit its writes are never committed, and a project that missed it
silently ran on memory). `open_checkpointer` runs the saver's own migrations and checks a
round trip; any failure raises `CheckpointerError`: there is no in-memory fallback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from storage.database import driver_url


class CheckpointerError(RuntimeError):
    """The workflow checkpointer could not be set up; the app must not start."""


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
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise CheckpointerError(f"cannot open the checkpoint pool: {exc}") from exc
    try:
        saver = AsyncPostgresSaver(pool)
        try:
            await saver.setup()
            async with pool.connection() as conn:
                cursor = await conn.execute("SELECT count(*) AS n FROM checkpoint_migrations")
                row = await cursor.fetchone()
            if row is None or int(row["n"]) == 0:
                raise CheckpointerError("the checkpoint tables are empty after setup")
        except CheckpointerError:
            raise
        except Exception as exc:
            raise CheckpointerError(f"cannot set up the checkpoint tables: {exc}") from exc
        yield saver
    finally:
        await pool.close()
