"""Ending background tasks: cancel them and wait until they have ended, without ever
swallowing the caller's own cancellation.

`task.cancel()` then `with suppress(CancelledError): await task` (the usual idiom) also
suppresses a cancellation of the caller that arrives while it waits: a `stop()` cancelled
there returned normally and its caller carried on as if it had not been cancelled. Here the
wait is `asyncio.wait`, which never raises the task's outcome, so a `CancelledError` seen by
the caller is always its own; what the task raised instead of ending cancelled is logged, not
raised into the caller's shutdown.

Usage::

    await cancel(self._sweeper, self._expirer)  # None and finished tasks are skipped
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel `tasks` and wait for all of them to end; the caller's cancellation propagates."""
    running = [task for task in tasks if task is not None and not task.done()]
    for task in running:
        task.cancel()
    if not running:
        return
    await asyncio.wait(running)
    for task in running:
        if not task.cancelled():
            error = task.exception()  # retrieved: never "exception was never retrieved"
            if error is not None:
                log.error("task.failed", task=task.get_name(), exc_info=error)


async def finish(tasks: Collection[asyncio.Task[Any]], patience: float, what: str) -> None:
    """Give `tasks` up to `patience` seconds to end on their own (work a stop should let
    finish: a card action's resume, a job's run), then cancel those still running, said in a
    warning, and wait for them (`cancel`). Nothing of theirs is left running after a stop."""
    running = [task for task in tasks if not task.done()]
    if not running:
        return
    _, late = await asyncio.wait(running, timeout=patience)
    if late:
        log.warning("tasks.cancelled_at_stop", what=what, tasks=sorted(t.get_name() for t in late))
        await cancel(*late)
