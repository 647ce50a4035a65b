"""Card updates, coalesced: at most one patch per card per second, the newest content wins.

A burst of updates for one card (repeats of an alert folding into its incident) becomes one
patch a second carrying the latest card; the per-card bucket lives in the coordination
backend, so replicas share it. In a storm, when more cards wait for a refresh than
`REFRESH_BUDGET` a second, they take turns: each is refreshed every `cards / REFRESH_BUDGET`
seconds (40 cards: every 4 s), so a storm's counts cost Lark a bounded share of the app's
50 calls a second and the bot a bounded number of card drawings. A card someone waits for
(`update_now`: a gate's buttons) keeps the one-a-second pace, and a wait for a refresh turn
ends as soon as someone starts waiting for that card.

The card is rendered when the patch is sent, not when the update is asked for, so a burst
costs one rendering per patch rather than one per update.
An update that cannot go out because Lark keeps answering 5xx/429, or Redis or Postgres is
away, is kept and tried again (backing off up to 30 s, for up to `PATIENCE`), so the card
catches up once they are back; Lark's other refusals drop it with a warning that carries
Lark's code. A card Lark will never update again — recalled (230011) or sent more than 14 days
ago (230031, "Message can only be modified within 14 days after sending.") — is handed
to the update's `lost` callback, when it has one, which sends a new card in its place (the
incident's card and its war room's: `bot.incidents.presenter`).

A patch nobody waits for (a refresh showing a newer count) is a background call: it takes the
app's turn after the sends and the awaited patches (`bot.lark.outbox`), so when the app is busy
a card's refreshes fold together for longer, and the last one still goes out.

`update_now` waits until the update (or a newer one) has reached Lark: the incident workflow
uses it, so a step that shows a gate ends only once the card shows it — a crash before that
repeats the step, and with it the patch, instead of leaving a card without its buttons.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.lark.api import LarkApi, LarkApiError, LarkRetryable
from bot.logs import get_logger
from storage.coordination import Coordination
from storage.tasks import finish

log = get_logger(__name__)

Render = Callable[[], Awaitable[dict[str, Any] | None]]
Lost = Callable[[], Awaitable[None]]
GONE = frozenset({230011, 230031})  # recalled; past the 14 days a card can be updated in
PATIENCE = 600.0  # seconds an update is retried while Lark, Redis or Postgres is away
REFRESH_BUDGET = 10.0  # refreshes a second (no one waiting) this process's cards share


class CardPatcher:
    def __init__(self, api: LarkApi, coordination: Coordination) -> None:
        self._api = api
        self._coordination = coordination
        self._pending: dict[str, Render] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self._waking: dict[str, asyncio.Event] = {}  # cards waiting for a refresh turn
        self._lost: dict[str, Lost] = {}

    def update(self, message_id: str, render: Render, lost: Lost | None = None) -> None:
        """Queue a new content for `message_id`: `render()` makes the card (None: nothing to
        send) when the patch goes out; a later update replaces a queued one. `lost()` is
        called instead when Lark will never update that message again (see the module)."""
        self._pending[message_id] = render
        if lost is not None:
            self._lost[message_id] = lost
        if message_id not in self._tasks:
            self._tasks[message_id] = asyncio.create_task(self._flush(message_id))

    async def update_now(
        self, message_id: str, render: Render, patience: float = 30.0, lost: Lost | None = None
    ) -> bool:
        """`update`, then wait until a patch with this content (or a newer one) went out:
        True; False when it failed for good or took longer than `patience` (it stays queued)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(done)
        self.update(message_id, render, lost)
        if waking := self._waking.get(message_id):
            waking.set()  # its refresh turn may be seconds away: someone waits now
        try:
            async with asyncio.timeout(patience):
                return await asyncio.shield(done)
        except TimeoutError:
            return False

    async def _flush(self, message_id: str) -> None:
        pause, gave_up_at = 1.0, time.monotonic() + PATIENCE
        try:
            while message_id in self._pending:
                render, waiting = self._pending[message_id], []
                try:
                    await self._turn(message_id)
                    render = self._pending.pop(message_id)
                    waiting = self._waiters.pop(message_id, [])  # this render covers them
                    card = await render()
                    if card is not None:
                        await self._api.patch_card(message_id, card, background=not waiting)
                    pause, gave_up_at = 1.0, time.monotonic() + PATIENCE
                    _settle(waiting, True)
                except LarkApiError as exc:
                    if exc.code in GONE and message_id in self._lost:
                        _settle(waiting, await self._replace(message_id, exc))
                        continue
                    if not isinstance(exc, LarkRetryable) or time.monotonic() > gave_up_at:
                        log.warning(
                            "card.patch_failed",
                            message_id=message_id,
                            code=exc.code,
                            error=str(exc),
                        )
                        _settle(waiting, False)
                        continue
                    self._retry_later(message_id, render, waiting, exc)
                except Exception as exc:  # Redis or Postgres away: the update waits for them
                    if time.monotonic() > gave_up_at:
                        log.warning("card.patch_failed", message_id=message_id, error=str(exc))
                        self._pending.pop(message_id, None)
                        _settle(waiting, False)
                        continue
                    self._retry_later(message_id, render, waiting, exc)
                else:
                    continue
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
        finally:
            self._tasks.pop(message_id, None)
            if message_id not in self._pending:
                self._lost.pop(message_id, None)
                _settle(self._waiters.pop(message_id, []), False)

    async def _turn(self, message_id: str) -> None:
        """Wait for the card's next patch, at its pace (`_pace`): in a storm a refresh
        waits for its turn, unless someone starts waiting for the card meanwhile."""
        bucket = f"card:{message_id}"
        while (delay := await self._coordination.take(bucket, self._pace(message_id), 1)) > 0:
            if self._waiters.get(message_id):
                await asyncio.sleep(delay)
                continue
            waking = self._waking[message_id] = asyncio.Event()
            try:
                async with asyncio.timeout(delay):
                    await waking.wait()
            except TimeoutError:
                pass
            finally:
                self._waking.pop(message_id, None)

    def _pace(self, message_id: str) -> float:
        """Patches a second for this card now: one while someone waits for it or the cards
        wanting a refresh fit the budget; in a storm, its share of `REFRESH_BUDGET`."""
        if self._waiters.get(message_id):
            return 1.0
        return min(1.0, REFRESH_BUDGET / max(1, len(self._tasks)))

    async def _replace(self, message_id: str, exc: LarkApiError) -> bool:
        """The message can no longer be updated: its `lost` callback sends a new card, which
        shows every update asked for so far (the queued ones are dropped). True once sent."""
        lost = self._lost.pop(message_id)
        self._pending.pop(message_id, None)
        waiting = self._waiters.pop(message_id, [])
        log.warning("card.gone", message_id=message_id, code=exc.code, error=str(exc))
        try:
            await lost()
        except Exception as again:  # the old card stays as it was; the failure is said
            log.warning("card.replace_failed", message_id=message_id, error=str(again))
            _settle(waiting, False)
            return False
        _settle(waiting, True)
        return True

    def _retry_later(
        self,
        message_id: str,
        render: Render,
        waiting: list[asyncio.Future[bool]],
        error: Exception,
    ) -> None:
        """Keep the update (a newer one queued meanwhile wins) for another try."""
        self._pending.setdefault(message_id, render)
        self._waiters.setdefault(message_id, []).extend(waiting)
        log.info("card.patch_deferred", message_id=message_id, error=str(error)[:200])

    async def drain(self, patience: float = 10.0) -> None:
        """Send what is queued, each card's latest content, for up to `patience` seconds (at a
        stop). A refresh asked for meanwhile (a war room's copy, drawn with its incident's
        card) is waited for too; what is still running after the patience is cancelled,
        said in a warning (`storage.tasks.finish`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while (running := [task for task in self._tasks.values() if not task.done()]) and (
            left := deadline - loop.time()
        ) > 0:
            await asyncio.wait(running, timeout=left)
        await finish(list(self._tasks.values()), 0, "card refreshes")


def _settle(waiting: list[asyncio.Future[bool]], sent: bool) -> None:
    for future in waiting:
        if not future.done():
            future.set_result(sent)
