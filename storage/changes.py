"""The change feed: what the database says changed (incidents, gates, jobs, actions, council
batches), to whoever listens in this process, over one listening connection.

Migration 0017's triggers `NOTIFY larkops_changes` with `{"kind", "id", "op", "status"}` on
the changes of `incidents` (not an alert's repeat), `approvals`, `schedules` (deletes too),
`actions` and `council_batches`, whichever replica (or tool) wrote it. The process's one
`ChangeFeed` for a database (`ChangeFeed.shared`) keeps one connection that LISTENs while
anyone uses it, and hands each change to

- every subscriber's queue (the REST API's event stream; a slow subscriber loses its oldest
  changes, never blocks the others), and
- every callback following its kind (`storage.notices`: the loops that sleep until a change).

When the connection drops, queues get `{"kind": "reset"}` (read the state again) and every
callback is called (a change may have been missed); it connects again with a growing pause.

    feed = ChangeFeed.shared(db.url)
    async with feed.subscribe() as changes:
        change = await changes.get()      # {"kind": "incident", "id": 7, "op": "update", ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import structlog

from storage.database import driver_url
from storage.tasks import cancel

log = structlog.get_logger(__name__)

CHANNEL = "larkops_changes"
QUEUE = 256
# the kind each table's changes carry (migration 0017)
KINDS = {
    "incidents": "incident",
    "approvals": "gate",
    "schedules": "job",
    "actions": "action",
    "council_batches": "council",
}
# what `subscribe` hands on: the REST API's stream (incidents, gates, jobs) and its key cache
# (a revoked or deleted API key, migration 0018)
STREAMED = frozenset({"incident", "gate", "job", "api_key"})
RECONNECT_MAX = 30.0  # seconds between two tries at most while Postgres is away
CONNECT_PATIENCE = 10.0  # seconds `open` waits for the first connection


# each event loop's feeds, by database (`ChangeFeed.shared`)
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ChangeFeed]] = (
    weakref.WeakKeyDictionary()
)


class ChangeFeed:
    def __init__(self, url: str) -> None:
        self.url = driver_url(url, "")
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._callbacks: dict[str, list[Callable[[], None]]] = {k: [] for k in KINDS.values()}
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @classmethod
    def shared(cls, url: str) -> ChangeFeed:
        """This process's feed of that database (one per event loop): one connection listens
        for the REST API's streams and the loops alike."""
        feeds = _SHARED.setdefault(asyncio.get_running_loop(), {})
        key = driver_url(url, "")
        if key not in feeds:
            feeds[key] = cls(url)
        return feeds[key]

    # who listens ------------------------------------------------------------------------

    def on_change(self, kinds: tuple[str, ...], callback: Callable[[], None]) -> None:
        """Call `callback` (in the event loop) after each change of one of `kinds`, and
        whenever changes may have been missed (the connection was lost)."""
        for kind in kinds:
            if kind not in self._callbacks:
                raise ValueError(f"no changes of kind {kind!r}; see KINDS")
            self._callbacks[kind].append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        for callbacks in self._callbacks.values():
            while callback in callbacks:
                callbacks.remove(callback)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the changes of incidents, gates and jobs from now on, while the block
        runs."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        await self.open()
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
            await self.release()

    # the connection ---------------------------------------------------------------------

    async def open(self) -> None:
        """Start listening (if nobody does yet); returns once listening, or after the first
        failure (it keeps trying; the loops keep their longest wait). Pair with `release`."""
        self._users += 1
        if self._task is None or self._task.done():
            self._connected.clear()
            self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_PATIENCE):
                await self._connected.wait()

    async def release(self) -> None:
        """One user less; the last one closes the connection."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            await self._stop()

    async def close(self) -> None:
        """Stop listening, whoever still uses the feed (the process stops)."""
        self._users = 0
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _listen(self) -> None:
        pause = 0.5
        first = True
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.url)
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(CHANNEL, self._heard)
                self._connected.set()
                pause = 0.5
                if not first:
                    self._missed()  # whatever changed while nobody listened
                first = False
                await lost.wait()
                log.warning("changes.lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres away: the loops fall back on their longest wait
                log.warning("changes.unavailable", error=str(exc)[:200], retry_in=pause)
                self._connected.set()
                first = False
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
            self._missed()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX)

    # handing changes on -----------------------------------------------------------------

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            change = json.loads(str(payload))
        except ValueError:
            return
        if not isinstance(change, dict):
            return
        kind = change.get("kind")
        for callback in self._callbacks.get(str(kind), ()):
            callback()
        if kind in STREAMED:
            self._broadcast(change)

    def _missed(self) -> None:
        self._broadcast({"kind": "reset"})
        called: set[int] = set()
        for callbacks in self._callbacks.values():
            for callback in callbacks:
                if id(callback) not in called:
                    called.add(id(callback))
                    callback()

    def _broadcast(self, change: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(change)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _: event.set()
