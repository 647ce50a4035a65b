"""Card updates, coalesced: at most one patch per card per second, the newest content wins.

A burst of updates for one card (repeats of an alert folding into its incident) becomes one
patch a second carrying the latest card; the per-card bucket lives in the coordination
backend, so replicas share it. The card is rendered when the patch is sent, not when the
update is asked for, so a burst costs one rendering per second rather than one per update.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from bot.lark.api import LarkApi, LarkApiError
from bot.logs import get_logger
from storage.coordination import Coordination

log = get_logger(__name__)

Render = Callable[[], Awaitable[dict[str, Any] | None]]


class CardPatcher:
    def __init__(self, api: LarkApi, coordination: Coordination) -> None:
        self._api = api
        self._coordination = coordination
        self._pending: dict[str, Render] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def update(self, message_id: str, render: Render) -> None:
        """Queue a new content for `message_id`: `render()` makes the card (None: nothing to
        send) when the patch goes out; a later update replaces a queued one."""
        self._pending[message_id] = render
        if message_id not in self._tasks:
            self._tasks[message_id] = asyncio.create_task(self._flush(message_id))

    async def _flush(self, message_id: str) -> None:
        try:
            while message_id in self._pending:
                await self._coordination.throttle(f"card:{message_id}", rate=1.0, burst=1)
                render = self._pending.pop(message_id)
                try:
                    card = await render()
                    if card is not None:
                        await self._api.patch_card(message_id, card)
                except LarkApiError as exc:
                    log.warning("card.patch_failed", message_id=message_id, error=str(exc))
        finally:
            self._tasks.pop(message_id, None)

    async def drain(self, patience: float = 10.0) -> None:
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(patience):
                    await asyncio.gather(*self._tasks.values(), return_exceptions=True)
