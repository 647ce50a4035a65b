"""Card updates, coalesced: at most one patch per card per second, the newest content wins.

A burst of updates for one card (repeats of an alert folding into its incident) becomes one
patch a second carrying the latest card; the per-card bucket lives in the coordination
backend, so replicas share it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot.lark.api import LarkApi, LarkApiError
from bot.logs import get_logger
from storage.coordination import Coordination

log = get_logger(__name__)


class CardPatcher:
    def __init__(self, api: LarkApi, coordination: Coordination) -> None:
        self._api = api
        self._coordination = coordination
        self._pending: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def update(self, message_id: str, card: dict[str, Any]) -> None:
        """Queue `card` as the new content of `message_id` (replacing any queued one)."""
        self._pending[message_id] = card
        if message_id not in self._tasks:
            self._tasks[message_id] = asyncio.create_task(self._flush(message_id))

    async def _flush(self, message_id: str) -> None:
        try:
            while message_id in self._pending:
                await self._coordination.throttle(f"card:{message_id}", rate=1.0, burst=1)
                card = self._pending.pop(message_id)
                try:
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
