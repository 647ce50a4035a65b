"""Start-up helpers shared by `larkops run` and the light commands (`migrate`, `gc`,
`apikey`): the one-line start-up error and opening the database (embedded unless
`DATABASE_URL`). Nothing here imports the Lark SDK or the HTTP server.
"""

from __future__ import annotations

import asyncio

from bot.config import Settings
from storage.database import Database
from storage.embedded import EmbeddedPostgres, EmbeddedPostgresError


class StartupError(RuntimeError):
    """Start-up cannot go on; the message is the one line shown to the operator."""


async def open_database(settings: Settings) -> tuple[Database, EmbeddedPostgres | None]:
    """The configured server, or the embedded one under `$LARKOPS_HOME`."""
    embedded: EmbeddedPostgres | None = None
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        embedded = EmbeddedPostgres(settings.home)
        try:
            url = await asyncio.to_thread(embedded.start)
        except EmbeddedPostgresError as exc:
            raise StartupError(f"embedded postgres: {exc}") from None
    database = await Database.open(url)
    try:
        await database.ping()
    except (TimeoutError, OSError) as exc:
        await database.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
        where = "DATABASE_URL" if embedded is None else "embedded postgres"
        raise StartupError(f"{where}: cannot connect: {exc}") from None
    except Exception as exc:
        await database.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
        raise StartupError(f"DATABASE_URL: {type(exc).__name__}: {exc}") from None
    return database, embedded
