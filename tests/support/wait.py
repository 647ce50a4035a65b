"""The one way a test waits: for the thing itself, with a deadline.

    await wait_until(lambda: bot.rows("SELECT ..."), what="the action row")
    wait_until_sync(server.answers, what="redis-server on its port")

A condition is polled (sync or async; every `poll` seconds: make it longer for conditions
that cost a query) until it returns something truthy, which is returned;
past the deadline the test fails saying what it waited for. A bare `sleep` is never a way to
let something happen: it is too short on a loaded machine and too long everywhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

POLL = 0.02  # seconds between two looks at the condition


async def wait_until(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    *,
    poll: float = POLL,
) -> Any:
    """Poll `condition` until truthy; its value, or AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(poll)


def wait_until_sync(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    *,
    poll: float = POLL,
) -> Any:
    """`wait_until` for code outside the event loop (subprocesses, threads, browsers)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
