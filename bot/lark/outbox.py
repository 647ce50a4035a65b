"""The order of the bot's sends, and how many wait (issue 22).

Above Lark's limits (50 calls/s per app, 5 messages/s into one chat) the bot's messages queue
here instead of being refused and lost:

- sends into one chat go one after another in the order they were asked for, each until it is
  delivered (its retries included), so a chat reads in order however Lark paces the app;
- the app's calls take their turn in arrival order (a FIFO lock around the app's bucket), and
  when Lark answers that the app is over its limit (99991400) every call waits out the reset
  it advertised, not only the refused one;
- `backlog` (and the gauge `larkops_lark_send_backlog`, and `/status`) is how many messages
  this process is waiting to send.

    outbox = Outbox()
    async with outbox.turn("oc_1"):              # this chat's next send
        await outbox.grant(take_app_token)       # the app's turn
        ...                                      # the request (and its retries)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import Gauge

SEND_BACKLOG = Gauge(
    "larkops_lark_send_backlog",
    "Messages this process is waiting to send to Lark (queued behind its rate limits, retried)",
)
# seconds a message refused for the rate keeps being retried in its turn (Lark's resets are a
# second or two); beyond, it fails like any refusal (an inbox event is then tried again later)
RATE_LIMITED_PATIENCE = 60.0


class Outbox:
    def __init__(self) -> None:
        self._lanes: dict[str, tuple[asyncio.Lock, int]] = {}  # chat -> (its turn, sends)
        self._gate = asyncio.Lock()  # FIFO: asyncio wakes a lock's waiters in order
        self._resume_at = 0.0  # monotonic: Lark said the app is over its limit until then
        self.backlog = 0

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[None]:
        """Wait for the chat's earlier sends to be delivered (or given up), then hold its turn."""
        lock, users = self._lanes.get(chat_id, (asyncio.Lock(), 0))
        self._lanes[chat_id] = (lock, users + 1)
        self._count(1)
        try:
            async with lock:
                yield
        finally:
            self._count(-1)
            lock, users = self._lanes[chat_id]
            if users <= 1:
                del self._lanes[chat_id]
            else:
                self._lanes[chat_id] = (lock, users - 1)

    async def grant(self, take: Callable[[], Awaitable[float]]) -> float:
        """The app's next turn, in arrival order: wait out a reset Lark asked for, then for
        `take` (the app's token bucket). Returns the seconds waited."""
        async with self._gate:
            waited = max(0.0, self._resume_at - time.monotonic())
            if waited:
                await asyncio.sleep(waited)
            return waited + await take()

    def pause(self, seconds: float) -> None:
        """Lark refused a call for the app's rate: nobody calls before `seconds` from now."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def _count(self, change: int) -> None:
        self.backlog += change
        SEND_BACKLOG.inc(change)
