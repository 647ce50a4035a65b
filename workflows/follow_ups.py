"""What follows a triage in the background: new incidents first, repeats folded together.

The inbox's workers triage a storm's deliveries and go straight back for the next ones; what
the outcome calls for happens here, so intake never waits for Lark (40 new incidents in one
chat are 9 s of sends at Lark's 5 messages a second into a chat: the workers used to wait
them out while the next deliveries, a new problem in another chat among them, waited in the
inbox):

- what changes an incident's life (opened, resolved by its alert, a storm card, a notice of
  a critical alert held back by a silence) goes out at once, in a task per outcome, in
  `Triage.notify`'s order;
- repeats only refresh a card: the incidents are kept in a set and one refresher goes
  through it, so ten deliveries folding into one incident refresh it once, after the card of
  a new incident (an incident still being opened here is refreshed when its card is out).

The triage is committed before any of this runs, so what a crash loses here is made up as
when a hook fails (`Triage.notify`): the workflow sweep starts the runs nobody drives, with
their first card, and the next change redraws a card.

    follow_ups = FollowUps(triage.notify, refresh=presenter.show)
    outcome = await triage.receive_batch(deliveries, notify=False)
    follow_ups.add(outcome)
    ...
    await follow_ups.drain()        # on stop
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from workflows.triage import TriageOutcome

log = logging.getLogger(__name__)


class FollowUps:
    def __init__(
        self,
        notify: Callable[[TriageOutcome], Awaitable[None]],
        refresh: Callable[[int], Awaitable[None]],
    ) -> None:
        self._notify = notify
        self._refresh = refresh
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed: dict[int, None] = {}  # incidents whose card wants a refresh, in order
        self._opening: dict[int, int] = {}  # incident -> its outcomes still being told here
        self._refresher: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, outcome: TriageOutcome) -> None:
        """Follow `outcome` up in the background (returns at once)."""
        urgent = replace(outcome, folded=[])
        if urgent.new or urgent.resolved or urgent.storms or urgent.notices:
            for incident_id in urgent.new:
                self._opening[incident_id] = self._opening.get(incident_id, 0) + 1
            self._spawn(self._tell(urgent))
        for incident_id in outcome.folded:
            self._changed[incident_id] = None
        self._wake()

    @property
    def pending(self) -> int:
        """Outcomes being told and cards waiting for a refresh."""
        return len(self._tasks) + len(self._changed)

    async def drain(self, patience: float = 5.0) -> None:
        """Let what was added finish (on stop) for up to `patience` seconds, then cancel the
        rest: the sweep of the next start makes it up, as after a crash."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._stopping = True  # what is cancelled now starts nothing more
        late = list(self._tasks)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _tell(self, outcome: TriageOutcome) -> None:
        try:
            await self._notify(outcome)  # it logs a failing hook and goes on
        finally:
            for incident_id in outcome.new:
                left = self._opening.pop(incident_id, 1) - 1
                if left:
                    self._opening[incident_id] = left
            self._wake()  # repeats that came while the card was being sent

    def _wake(self) -> None:
        if self._stopping:
            return
        if self._refresher is None and any(i not in self._opening for i in self._changed):
            self._refresher = self._spawn(self._refresh_all())

    async def _refresh_all(self) -> None:
        try:
            while ready := [i for i in self._changed if i not in self._opening]:
                for incident_id in ready:
                    del self._changed[incident_id]
                    try:
                        await self._refresh(incident_id)
                    except Exception:
                        log.exception("follow-up: refreshing incident %s failed", incident_id)
        finally:
            self._refresher = None
        self._wake()  # added while the last one was refreshed

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
