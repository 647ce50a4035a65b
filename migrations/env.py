"""Alembic environment: async (asyncpg), one migrator at a time across replicas.

`storage.migration` passes an open connection in `config.attributes["connection"]`; the plain
`alembic` command opens its own from `-x url=…`, `sqlalchemy.url` or `DATABASE_URL`.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.database import driver_url
from storage.models import Base

config = context.config
target_metadata = Base.metadata

# any constant works; every larkops replica must use the same one
MIGRATION_LOCK = 7_262_011_942


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise SystemExit("no database: pass -x url=… or set DATABASE_URL")
    return url


def run_offline() -> None:
    context.configure(
        url=driver_url(_url(), "asyncpg"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # replicas starting together: the first migrates, the others wait and find nothing to do
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(driver_url(_url(), "asyncpg"), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (shared := config.attributes.get("connection")) is not None:
    run_with(shared)
else:
    asyncio.run(run_online())
