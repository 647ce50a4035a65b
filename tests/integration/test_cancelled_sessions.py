"""A task cancelled at any moment of a database session (the pool's checkout and its ping,
BEGIN, a statement, COMMIT) ends in `CancelledError`, leaves no connection in a transaction on
the server, and the next session works. The scheduler's stop() was once thought to be lost
here; it was lost in the Redis client (tests/integration/test_coordination.py), and this keeps
the database side honest."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import event, text

from storage.database import Database
from tests.support.cancellation import cancel_at_every_turn, ready
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

    async def settled(turns: int) -> None:
        # a cancelled connection's backend may take a moment to go; one left in a transaction
        # stays (and the next session must not be stuck behind the cancelled one)
        await wait_until(
            lambda: _idle(migrated_db), what=f"no connection in a transaction (turn {turns})"
        )

    sweep = await cancel_at_every_turn(lambda: ready(work()), after=settled)
    assert sweep.lost == []  # turns at which the cancellation was lost
    assert sweep.turns > 3  # the sweep went through the session's steps


async def _only_pooled(db: Database) -> bool:
    """Whether the server has no connection of this database but the pool's own."""
    pool = db.engine.sync_engine.pool
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
        return int(found.scalar_one()) == pool.checkedin()


@pytest.mark.parametrize("moment", ["reset", "checkin", "close"])
async def test_a_task_cancelled_as_it_hands_back_a_surplus_connection_logs_no_error(
    migrated_db: Database, caplog: pytest.LogCaptureFixture, moment: str
) -> None:
    """A session beyond the pool's size gets a connection of its own, which the pool closes
    when it is handed back. A task cancelled at that moment (a `stop()` arriving as a loop's
    query ends) ends cancelled, with no ERROR in the log ("Exception closing connection": a
    clean stop logged it), and the connection is closed on the server all the same."""
    pool = migrated_db.engine.sync_engine.pool
    size = pool.size()  # type: ignore[attr-defined]
    release, surplus_done = asyncio.Event(), asyncio.Event()
    armed: list[asyncio.Task[None]] = []

    def cancel_the_surplus(*_: object) -> None:
        task = asyncio.current_task()
        if armed and task is armed[0]:
            armed.clear()
            task.cancel()

    event.listen(pool, moment, cancel_the_surplus)

    async def hold(done: asyncio.Event) -> None:
        async with migrated_db.session() as session:
            await session.execute(text("SELECT 1"))
            await done.wait()

    holders = [asyncio.create_task(hold(release)) for _ in range(size)]
    await wait_until(lambda: pool.checkedout() == size, what="the pool's connections held")
    surplus = asyncio.create_task(hold(surplus_done))
    await wait_until(lambda: pool.checkedout() == size + 1, what="a surplus connection")
    release.set()
    await asyncio.gather(*holders)  # back in the pool, which is full now
    armed.append(surplus)
    with caplog.at_level(logging.WARNING):
        surplus_done.set()
        with pytest.raises(asyncio.CancelledError):
            await surplus
        assert not armed  # cancelled at `moment`
        await wait_until(lambda: _only_pooled(migrated_db), what="the surplus connection closed")
    event.remove(pool, moment, cancel_the_surplus)
    loud = [r.getMessage()[:120] for r in caplog.records if r.levelno >= logging.ERROR]
    assert loud == []
