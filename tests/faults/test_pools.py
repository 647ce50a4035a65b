"""Pools heal: after Postgres or Redis drops every connection (a restart, a failover, an idle
timeout on the way), the first use of each pool succeeds instead of failing once and leaving the
work to the next sweep. Postgres's connections are cut with `pg_terminate_backend`, Redis's with
`CLIENT KILL` on a server of the test's own, exactly as a restart looks from the pool."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text

from storage.coordination import open_coordination
from storage.database import Database
from tests.conftest import World
from tests.support.cluster import RedisServer, rows
from workflows.checkpoint import open_checkpointer


async def cut_postgres(dsn: str) -> int:
    """Terminate every other connection to the test's database; how many were cut."""
    cut = await rows(
        dsn,
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    return int(cut[0][0])


async def test_the_checkpointer_pool_heals_after_its_connections_are_cut(world: World) -> None:
    async with open_checkpointer(world.db_url, max_size=2) as saver:
        config = {"configurable": {"thread_id": "heal-1", "checkpoint_ns": ""}}
        assert await saver.aget_tuple(config) is None  # the pool's connection is in use
        assert await cut_postgres(world.db_url) >= 1
        # the first graph step after the cut reads the run's checkpoint: it must work
        assert await saver.aget_tuple(config) is None
        assert [c async for c in saver.alist(config)] == []


async def test_the_database_pool_heals_after_its_connections_are_cut(world: World) -> None:
    db: Database = world.db
    async with db.session() as session:
        assert await session.scalar(text("SELECT 1")) == 1
    assert await cut_postgres(world.db_url) >= 1
    async with db.session() as session:
        assert await session.scalar(text("SELECT 2")) == 2


async def test_the_redis_pool_heals_after_its_connections_are_cut(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        coordination = await open_coordination(server.url, "heal")
        try:
            lease = await coordination.acquire("one", 10)
            assert lease is not None
            killer = Redis.from_url(server.url)
            try:
                killed = await killer.execute_command(
                    "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"
                )
                assert int(killed) >= 1
            finally:
                await killer.aclose()
            assert await coordination.renew(lease, 10)
        finally:
            await coordination.close()
    finally:
        server.stop()
