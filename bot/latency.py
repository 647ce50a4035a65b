"""How long each of the bot's backends takes to answer one round trip: what `/ping` shows.

latency = Latency(db, coordination, api)
await latency.database()      # "1.2" (milliseconds, one decimal)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.lark.api import LarkApi
from storage.coordination import Coordination
from storage.database import Database


class Latency:
    """The database, the coordination backend (Redis or memory) and Lark, each timed once."""

    def __init__(self, db: Database, coordination: Coordination, api: LarkApi) -> None:
        self.db = db
        self.coordination = coordination
        self.api = api

    @property
    def backend(self) -> str:
        """Which coordination backend answers (`redis`, `memory`)."""
        return self.coordination.backend

    async def database(self) -> str:
        return await _timed(self.db.ping)

    async def coordinator(self) -> str:
        return await _timed(self.coordination.ping)

    async def lark(self) -> str:
        return await _timed(self.api.bot_info)


async def _timed(call: Callable[[], Awaitable[object]]) -> str:
    """The milliseconds one call took, as /ping shows them (`12.3`)."""
    started = time.perf_counter()
    await call()
    return f"{(time.perf_counter() - started) * 1000:.1f}"
