"""The answer card, updated as the model writes: the first text at once, then throttled.

Lark allows a few updates of one message per second (the emulator enforces 5), so after the
first text the card is patched at most once per `interval` with everything written so far;
patches never overlap, and the last one (the finished answer, with its evidence) always goes
out. A failed patch is logged and the next one carries the text anyway.

Usage::

    stream = CardStream(api, say)
    message_id = await stream.open(ctx.reply_card)
    stream.text("磁盘")            # as the model streams (the agent's Listener)
    await stream.finish(evidence=(Evidence("list_incidents", "3 incidents"),), note="")
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Histogram

from bot.lark.api import LarkApi, LarkApiError
from bot.logs import get_logger
from cards.chat import AnswerView, Evidence, answer_card
from cards.texts import Texts
from storage.tasks import cancel

log = get_logger(__name__)

INTERVAL = 0.5  # seconds between patches after the first text
FIRST_TEXT_SECONDS = Histogram(
    "larkops_chat_first_text_seconds",
    "From the model's first text to the first card patch that shows it",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)


class CardStream:
    def __init__(self, api: LarkApi, say: Texts, *, interval: float = INTERVAL) -> None:
        self.api = api
        self.say = say
        self.interval = interval
        self.message_id = ""
        self.patches = 0
        self._parts: list[str] = []
        self._status = ""
        self._shown_text = False  # a patch with text has been sent
        self._text_at: float | None = None  # when the first text came, until a patch shows it
        self._last = 0.0
        self._dirty = asyncio.Event()
        self._first_text = asyncio.Event()  # wakes the pump early for the first text
        self._pump: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()

    @property
    def written(self) -> str:
        return "".join(self._parts)

    async def open(self, post: Callable[[dict[str, Any]], Awaitable[str]]) -> str:
        """Post the card ("thinking…") and start updating it."""
        self.message_id = await post(answer_card(AnswerView(), self.say))
        self._last = time.monotonic()
        self._pump = asyncio.create_task(self._run())
        return self.message_id

    def text(self, delta: str) -> None:
        if delta:
            if not self._parts:
                self._text_at = time.monotonic()
            self._parts.append(delta)
            self._status = ""
            self._first_text.set()
            self._dirty.set()

    def tool(self, name: str) -> None:
        self._status = name
        self._dirty.set()

    async def finish(self, *, evidence: tuple[Evidence, ...], note: str, text: str = "") -> None:
        """The finished answer (`text` replaces what streamed when given).

        A patch in flight is let finish first, never cancelled: Lark may apply a request whose
        caller gave up after the finished card, which would leave people with a partial one."""
        async with self._sending:
            await cancel(self._pump)  # it is not patching: this holds `_sending`
            if text:
                self._parts = [text]
            view = AnswerView(text=self.written, done=True, evidence=evidence, note=note)
            await asyncio.sleep(max(0.0, self._last + self.interval - time.monotonic()))
            await self._patch(answer_card(view, self.say))

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            delay = self._last + self.interval - time.monotonic()
            if delay > 0 and not (self._first_text.is_set() and not self._shown_text):
                # wait out the interval, unless the first text arrives meanwhile
                wake = self._first_text if not self._shown_text else asyncio.Event()
                with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
                    async with asyncio.timeout(delay):
                        await wake.wait()
            self._dirty.clear()
            async with self._sending:
                self._shown_text = self._shown_text or bool(self._parts)
                view = AnswerView(text=self.written, status=self._status)
                await self._patch(answer_card(view, self.say))

    async def _patch(self, card: dict[str, Any]) -> None:
        try:
            await self.api.patch_card(self.message_id, card)
            self.patches += 1
            if self._text_at is not None:
                FIRST_TEXT_SECONDS.observe(time.monotonic() - self._text_at)
                self._text_at = None
        except LarkApiError as exc:
            log.warning("chat.patch_failed", message_id=self.message_id, error=str(exc))
        self._last = time.monotonic()
