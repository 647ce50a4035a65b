"""The order of the bot's sends, and how many wait (issue 22).

Above Lark's limits (50 calls/s per app, 5 messages/s into one chat) the bot's messages queue
here instead of being refused and lost:

- sends into one chat go one after another in the order they were asked for, each until it is
  delivered (its retries included), so a chat reads in order however Lark paces the app;
- the app's calls take their turn in arrival order (a FIFO around the app's bucket), except
  that background calls (a card refreshed only to show a newer count) go when no other call
  waits, or one turn in `BACKGROUND_SHARE` when they keep waiting, so a new incident's card is
  not queued behind the refreshes of repeating ones;
- when Lark answers that the app is over its limit (99991400) every call waits out the reset
  it advertised, not only the refused one;
- `backlog` (and the gauge `larkops_lark_send_backlog`, and `/status`) is how many messages
  this process is waiting to send.

    outbox = Outbox()
    async with outbox.turn("oc_1"):              # this chat's next send
        await outbox.grant(take_app_token)       # the app's turn
    await outbox.grant(take_app_token, background=True)  # a refresh: after the others
        ...                                      # the request (and its retries)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import Gauge

SEND_BACKLOG = Gauge(
    "larkops_lark_send_backlog",
    "Messages this process is waiting to send to Lark (queued behind its rate limits, retried)",
)
# seconds a message refused for the rate keeps being retried in its turn (Lark's resets are a
# second or two); beyond, it fails like any refusal (an inbox event is then tried again later)
RATE_LIMITED_PATIENCE = 60.0
# while other calls keep waiting, one turn in this many goes to a waiting background call, so
# refreshes slow down under a burst of sends but do not stop
BACKGROUND_SHARE = 10


class Outbox:
    def __init__(self) -> None:
        self._lanes: dict[str, tuple[asyncio.Lock, int]] = {}  # chat -> (its turn, sends)
        self._busy = False  # a call holds the app's turn
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),  # calls, in arrival order
            deque(),  # background calls, in arrival order
        )
        self._passed_over = 0  # turns given to calls while a background call waited
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

    async def grant(
        self, take: Callable[[], Awaitable[float]], *, background: bool = False
    ) -> float:
        """The app's next turn, in arrival order (a `background` call after the others): wait
        out a reset Lark asked for, then for `take` (the app's token bucket). Returns the
        seconds waited."""
        await self._acquire(background)
        try:
            waited = max(0.0, self._resume_at - time.monotonic())
            if waited:
                await asyncio.sleep(waited)
            return waited + await take()
        finally:
            self._release()

    @property
    def waiting(self) -> tuple[int, int]:
        """Calls and background calls waiting for the app's turn."""
        return len(self._waiting[0]), len(self._waiting[1])

    async def _acquire(self, background: bool) -> None:
        if not self._busy and not any(self._waiting):
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting[1 if background else 0]
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the turn, then cancelled
                self._release()
            else:
                queue.remove(turn)
            raise

    def _release(self) -> None:
        """Hand the turn to the next waiter (the caller holds it), or free it."""
        calls, background = self._waiting
        if calls and (not background or self._passed_over < BACKGROUND_SHARE - 1):
            self._passed_over = self._passed_over + 1 if background else 0
            calls.popleft().set_result(None)
        elif background:
            self._passed_over = 0
            background.popleft().set_result(None)
        else:
            self._busy = False

    def pause(self, seconds: float) -> None:
        """Lark refused a call for the app's rate: nobody calls before `seconds` from now."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def _count(self, change: int) -> None:
        self.backlog += change
        SEND_BACKLOG.inc(change)
