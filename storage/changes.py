"""The change feed: what the database says changed (incidents, gates, jobs), to whoever
listens in this process.

Migration 0015's triggers `NOTIFY larkops_changes` with `{"kind", "id", "op", "status"}` on
every insert and update of `incidents`, `approvals` and `schedules`, whichever replica (or
tool) wrote it. One `ChangeFeed` per process keeps one connection that LISTENs, and hands each
change to every subscriber's queue (a slow subscriber loses its oldest changes, never blocks
the others).

    feed = ChangeFeed(db.url)
    async with feed.subscribe() as changes:
        change = await changes.get()      # {"kind": "incident", "id": 7, "op": "update", ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from storage.database import driver_url

CHANNEL = "larkops_changes"
QUEUE = 256


class ChangeFeed:
    def __init__(self, url: str) -> None:
        self.url = url
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def _listen(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            self._conn = await asyncpg.connect(driver_url(self.url, ""))
            await self._conn.add_listener(CHANNEL, self._heard)
            self._conn.add_termination_listener(self._lost)

    def _lost(self, _conn: object) -> None:
        """The listening connection is gone (a database restart): subscribers are told to
        read the state again, and the next subscription listens anew."""
        self._conn = None
        self._broadcast({"kind": "reset"})

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            change = json.loads(str(payload))
        except ValueError:
            return
        self._broadcast(change)

    def _broadcast(self, change: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(change)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the changes from now on, while the block runs."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        await self._listen()
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close()
                self._conn = None
