"""Changes in Postgres wake the loops that wait for them (LISTEN/NOTIFY), so a bot with nothing
to do does not look every few seconds (issue 22).

Row triggers (migration 0013) notify `larkops_<table>` when a row of `schedules`, `approvals`,
`actions` or `council_batches` changes, or an incident is opened (a statement that changes no
row notifies nobody). `Notices` keeps one asyncpg
connection listening and runs each subscriber's callback (an `asyncio.Event.set`, a `wake()`).
When that connection drops, every subscriber is called (a change may have been missed while it
was away) and it connects again with a growing pause; a loop waiting on a change therefore also
keeps its own longest wait (`rest`), which bounds what a lost notification can delay.

    notices = Notices(db.url)
    changed = notices.event("approvals", "incidents")
    await notices.start()
    ...
    await rest(changed, 60.0)   # until one of them changes, or 60 s
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from storage.database import driver_url

log = structlog.get_logger(__name__)

TABLES = ("schedules", "approvals", "actions", "council_batches", "incidents")
PREFIX = "larkops_"
RECONNECT_MAX = 30.0  # seconds between two tries at most while Postgres is away


class Notices:
    def __init__(self, url: str) -> None:
        self.url = driver_url(url, "")
        self._subscribers: dict[str, list[Callable[[], None]]] = {t: [] for t in TABLES}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def on_change(self, tables: tuple[str, ...], callback: Callable[[], None]) -> None:
        """Call `callback` (in the event loop) after each change of one of `tables`."""
        for table in tables:
            if table not in self._subscribers:
                raise ValueError(f"no notifications for table {table!r}; see TABLES")
            self._subscribers[table].append(callback)

    def event(self, *tables: str) -> asyncio.Event:
        """An event set by each change of one of `tables` (the waiter clears it)."""
        changed = asyncio.Event()
        self.on_change(tables, changed.set)
        return changed

    async def start(self) -> None:
        """Listen in the background; returns once listening (or after the first failure: a
        listener that cannot connect yet keeps trying, the loops keep their longest wait)."""
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._connected.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _everyone(self) -> None:
        for callbacks in self._subscribers.values():
            for callback in callbacks:
                callback()

    def _notified(self, _: object, __: int, channel: str, ___: object) -> None:
        for callback in self._subscribers.get(channel.removeprefix(PREFIX), ()):
            callback()

    async def _listen(self) -> None:
        pause = 0.5
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.url)
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                for table in TABLES:
                    await connection.add_listener(PREFIX + table, self._notified)
                self._connected.set()
                pause = 0.5
                self._everyone()  # whatever changed while nobody listened
                await lost.wait()
                log.warning("notices.lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres away: the loops fall back on their longest wait
                log.warning("notices.unavailable", error=str(exc)[:200], retry_in=pause)
                self._connected.set()
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
            self._everyone()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _: event.set()


async def rest(changed: asyncio.Event | None, longest: float) -> None:
    """Wait until `changed` is set or `longest` seconds passed, then clear it."""
    if changed is None:
        await asyncio.sleep(longest)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(longest):
            await changed.wait()
    changed.clear()


QUIET = 60.0  # seconds a loop with nothing in flight waits when no change wakes it


async def paced(
    round_: Callable[[], Awaitable[None]],
    busy: Callable[[], Awaitable[bool]],
    *,
    every: float,
    changed: asyncio.Event | None,
    quiet: float = QUIET,
) -> None:
    """Run `round_` forever: every `every` seconds while `busy()` (work in flight: runs to
    reclaim, gates to expire), otherwise after the next change of the tables `changed`
    follows, or `quiet` seconds. Without `changed` (no notices), every `every` seconds."""
    while True:
        await round_()
        if changed is None:
            await asyncio.sleep(every)
            continue
        try:
            working = await busy()
        except Exception:  # cannot tell: as if there were work
            working = True
        if working:
            await asyncio.sleep(every)
            changed.clear()  # what changed meanwhile is looked at by the next round
        else:
            await rest(changed, quiet)
