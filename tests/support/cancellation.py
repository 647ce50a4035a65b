"""A cancellation at every moment of a piece of work: the sweep the shutdown tests share.

The work is started and cancelled after 0, 1, 2, … turns of the event loop, each time anew,
until it finishes before the cancellation comes. At each turn the task must end cancelled: a
task that returned normally although cancelled lost the cancellation (its caller would carry on
as if never stopped: `asyncio.wait_for` on Python 3.11, `suppress(CancelledError)` around a
wait).

    sweep = await cancel_at_every_turn(lambda: ready(coord.renew(lease, ttl=30)))
    assert sweep.lost == []     # turns at which the cancellation was lost
    assert sweep.turns > 3      # the sweep went through the work's steps
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Work = Coroutine[Any, Any, T]


@dataclass(frozen=True)
class Sweep(Generic[T]):
    lost: list[int]  # turns at which the cancellation was lost
    turns: int  # turns the work took when nothing cancelled it
    result: T  # what it returned then


async def ready(work: Work[T]) -> Work[T]:
    """`work` as `cancel_at_every_turn` takes it, when it needs nothing set up first."""
    return work


async def cancel_at_every_turn(
    begin: Callable[[], Awaitable[Work[T]]],
    *,
    after: Callable[[int], Awaitable[None]] | None = None,
) -> Sweep[T]:
    """Sweep the work `begin` sets up and returns (not yet started); `after(turns)` runs after
    each cancelled try (to close what the try left, or wait until the server let it go)."""
    lost: list[int] = []
    turns = 0
    while True:
        task = asyncio.create_task(await begin())
        for _ in range(turns):
            await asyncio.sleep(0)
        if task.done():
            return Sweep(lost, turns, task.result())
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled():
            lost.append(turns)
            task.exception()  # retrieved: never "exception was never retrieved"
        if after is not None:
            await after(turns)
        turns += 1
