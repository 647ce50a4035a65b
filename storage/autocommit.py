"""Single statements outside any transaction, on a few asyncpg connections of their own.

A session of the engine costs four round trips for one `INSERT`: the checkout's ping, `BEGIN`,
the statement and `COMMIT` (and SQLAlchemy's building of the statement around them). The
durable inbox records every delivery so before answering it: in an alert storm, that was a tenth
of the bot's CPU (issue 22). Here the statement is one round trip, an implicit transaction of
its own, on connections no session shares.

Only for statements that are safe to send twice: a connection the server closed (a restart, an
idle connection terminated) is found out by the statement itself, and the statement is sent once
more on a new connection. An `INSERT … ON CONFLICT DO NOTHING` qualifies.

    rows = Autocommit({"host": "127.0.0.1", "port": 5432, "user": "postgres", ...})
    row_id = await rows.fetchval("INSERT … RETURNING id", 1, "x")
    await rows.close()
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

SIZE = 4  # connections at most; a statement holds one for a round trip
# a connection the server ended: asyncpg says so in one of these, by what it had read of the
# goodbye when the statement went out (InternalClientError "cannot switch to state": seen once
# in a test that ended an idle connection)
GONE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


class Autocommit:
    """A small pool for statements that need no transaction (see the module's docstring)."""

    def __init__(self, connect: dict[str, Any]) -> None:
        self.connect = connect  # asyncpg.connect's keywords, as the engine's dialect makes them
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def fetchval(self, sql: str, *args: object) -> Any:
        """The first column of the statement's first row (None when it returns none)."""
        pool = await self._opened()
        try:
            return await pool.fetchval(sql, *args)
        except GONE:  # the server had ended the connection (the statement may have run)
            return await pool.fetchval(sql, *args)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _opened(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    min_size=0, max_size=SIZE, reset=_kept, **self.connect
                )
            return self._pool


async def _kept(connection: asyncpg.Connection) -> None:
    """A connection handed back is kept as it is: its statements leave no session state (no
    `SET`, `LISTEN` or advisory lock), so asyncpg's reset (`RESET ALL`, `UNLISTEN *`, …) would
    be one more round trip for every statement, for nothing."""
