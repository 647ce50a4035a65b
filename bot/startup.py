"""Start-up helpers shared by `larkops run` and the light commands (`migrate`, `gc`,
`apikey`): the one-line start-up error and opening the database (embedded unless
`DATABASE_URL`). Nothing here imports the Lark SDK or the HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bot.config import Settings
from storage.embedded import EmbeddedPostgres, EmbeddedPostgresError

if TYPE_CHECKING:
    from storage.database import Database


@contextlib.contextmanager
def paused_collection() -> Iterator[None]:
    """No garbage collection while the app's modules are imported.

    The imports make a quarter of a million objects that live as long as the process; the
    collector walked them again and again as they arrived: a fifth of the imports' CPU, which is
    most of the time to "Lark connected" (issue 22). They leave next to no cyclic garbage (+2 MB
    peak); `App.start` freezes them once started."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class StartupError(RuntimeError):
    """Start-up cannot go on; the message is the one line shown to the operator."""


async def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The configured server's URL, or the embedded one's under `$LARKOPS_HOME` (started)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value(), None
    embedded = EmbeddedPostgres(settings.home)
    try:
        return await asyncio.to_thread(embedded.start), embedded
    except EmbeddedPostgresError as exc:
        raise StartupError(f"embedded postgres: {exc}") from None


def connect_failure(exc: Exception, embedded: EmbeddedPostgres | None) -> StartupError:
    """The one line for a database that did not answer the first statement."""
    if isinstance(exc, (TimeoutError, OSError)):
        where = "DATABASE_URL" if embedded is None else "embedded postgres"
        return StartupError(f"{where}: cannot connect: {exc}")
    return StartupError(f"DATABASE_URL: {type(exc).__name__}: {exc}")


async def open_database(settings: Settings) -> tuple[Database, EmbeddedPostgres | None]:
    """The configured server, or the embedded one under `$LARKOPS_HOME`."""
    # SQLAlchemy takes half a second to import: `larkops apikey` does without it (issue 22)
    from storage.database import Database

    url, embedded = await database_url(settings)
    database = await Database.open(url)
    try:
        await database.ping()
    except Exception as exc:
        await database.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
        raise connect_failure(exc, embedded) from None
    return database, embedded
