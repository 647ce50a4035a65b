"""Changes in Postgres wake the loops that wait for them (LISTEN/NOTIFY), so a bot with nothing
to do does not look every few seconds (issue 22).

The loops follow tables (`schedules`, `approvals`, `actions`, `council_batches`, `incidents`:
opened, or changed other than by an alert's repeat); the changes come from the process's one
`storage.changes.ChangeFeed` (channel `larkops_changes`, migration 0017), which also feeds the
REST API's event stream: one listening connection per process. `Notices` runs each
subscriber's callback (an `asyncio.Event.set`, a `wake()`) after a change of a table it
follows, and whenever the feed's connection dropped (a change may have been missed); a loop
waiting on a change therefore also keeps its own longest wait (`rest`), which bounds what a
lost notification can delay. A statement that changes no row notifies nobody.

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

from storage.changes import KINDS, ChangeFeed

TABLES = tuple(KINDS)


class Notices:
    def __init__(self, url: str) -> None:
        try:
            self.feed = ChangeFeed.shared(url)
        except RuntimeError:  # no running loop: a feed of its own
            self.feed = ChangeFeed(url)
        self._callbacks: list[Callable[[], None]] = []
        self._started = False

    def on_change(self, tables: tuple[str, ...], callback: Callable[[], None]) -> None:
        """Call `callback` (in the event loop) after each change of one of `tables`."""
        for table in tables:
            if table not in KINDS:
                raise ValueError(f"no notifications for table {table!r}; see TABLES")
        self.feed.on_change(tuple(KINDS[table] for table in tables), callback)
        self._callbacks.append(callback)

    def event(self, *tables: str) -> asyncio.Event:
        """An event set by each change of one of `tables` (the waiter clears it)."""
        changed = asyncio.Event()
        self.on_change(tables, changed.set)
        return changed

    async def start(self) -> None:
        """Listen (through the process's feed); returns once listening (or after the first
        failure: the feed keeps trying, the loops keep their longest wait). Every subscriber
        is called once: whatever changed before it listened."""
        if not self._started:
            self._started = True
            await self.feed.open()
        for callback in self._callbacks:
            callback()

    async def stop(self) -> None:
        for callback in self._callbacks:
            self.feed.forget(callback)
        if self._started:
            self._started = False
            await self.feed.release()


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
