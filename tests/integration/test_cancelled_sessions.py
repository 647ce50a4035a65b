"""A task cancelled at any moment of a database session (the pool's checkout and its ping,
BEGIN, a statement, COMMIT) ends in `CancelledError`, leaves no connection in a transaction on
the server, and the next session works. The scheduler's stop() was once thought to be lost
here; it was lost in the Redis client (tests/integration/test_coordination.py), and this keeps
the database side honest."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from storage.database import Database
from tests.support.wait import wait_until


async def _busy(db: Database) -> list[str]:
    """States of this database's other connections that are not idle."""
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
        )
        return [str(state) for (state,) in found.all()]


async def _idle(db: Database) -> bool:
    return await _busy(db) == []


async def test_a_session_cancelled_at_any_moment_leaves_nothing_behind(
    migrated_db: Database,
) -> None:
    async def work() -> None:
        async with migrated_db.session() as session:
            await session.execute(text("SELECT 1"))
            await session.execute(text("SELECT count(*) FROM schedules"))

    lost: list[int] = []
    turns = 0
    while True:
        task = asyncio.create_task(work())
        for _ in range(turns):
            await asyncio.sleep(0)
        if task.done():
            task.result()
            break
        task.cancel()
        try:
            await task
            lost.append(turns)
        except asyncio.CancelledError:
            pass
        # a cancelled connection's backend may take a moment to go; one left in a transaction
        # stays (and the next session must not be stuck behind the cancelled one)
        await wait_until(
            lambda: _idle(migrated_db), what=f"no connection in a transaction (turn {turns})"
        )
        turns += 1
    assert lost == []  # turns at which the cancellation was lost
    assert turns > 3  # the sweep went through the session's steps
