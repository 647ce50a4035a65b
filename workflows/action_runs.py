"""Runs of the action graph (`workflows.action_graph`): start, resume at the gate, expire the
gate, take up runs nobody drives. Driven like the incident workflow (`workflows.driver`): under
a lease per run, every step checkpointed, so a replica killed at any point leaves the run to
be continued by another, and the plugin runs at most once.

Usage::

    runs = ActionRuns(deps, saver, coordination)
    await runs.run(action.id, str(action.run_id), force_approval=False)  # until the gate
    await runs.resume(run_id, token, {"decision": "approve", "by": ["ou_bob"]})
    await runs.sweep()                            # expired gates, stranded runs
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from storage import actions
from storage.coordination import Coordination
from workflows import gates
from workflows.action_graph import GATE, NODES, ActionDeps, ActionState, build_action_graph
from workflows.driver import GraphDriver, fresh

log = logging.getLogger(__name__)

RECLAIM_AFTER = 5.0  # seconds an action or a decided gate is left to its own worker first
RECENT_GATE = 60.0  # seconds after a gate opened that its run is still checked


class ActionRuns(GraphDriver):
    def __init__(
        self,
        deps: ActionDeps,
        checkpointer: BaseCheckpointSaver[Any],
        coordination: Coordination,
        *,
        reclaim_after: float = RECLAIM_AFTER,
    ) -> None:
        graph = build_action_graph(deps).compile(checkpointer=checkpointer)
        super().__init__(deps.db, graph, NODES, checkpointer, coordination)
        self.reclaim_after = reclaim_after

    async def run(
        self,
        action_id: int,
        run_id: str,
        *,
        force_approval: bool = False,
        trace_id: str | None = None,
    ) -> None:
        """Start the action's run and wait until it pauses at its gate or ends."""
        initial: ActionState = {
            "action_id": action_id,
            "run_id": run_id,
            "force_approval": force_approval,
            "trace_id": trace_id,
        }
        await self._advance(run_id, fresh(initial))

    async def sweep_expired(self) -> int:
        """Close expired action gates and resume their runs with a timeout."""
        expired = await gates.sweep(self.db, incident_gates=False)
        for row in expired:
            await self.resume(
                str(row.run_id), row.interrupt_id, {"decision": "timeout", "by": []}, wait=False
            )
        return len(expired)

    async def reclaim(self) -> int:
        """Take up the runs of unfinished actions that nobody drives."""
        found = await actions.stranded(
            self.db, stale_after=self.reclaim_after, recent=RECENT_GATE, gate=GATE
        )
        # a run that died before its first checkpoint starts over; `force_approval` is not
        # known then, so it is asked for: a person decides (the safe side)
        return await self.take_up(
            [(str(run), partial(_initial, action_id, str(run))) for action_id, run in found]
        )

    async def sweep(self) -> None:
        """One round: expire due gates, then take up runs nobody drives."""
        try:
            await self.sweep_expired()
        except Exception:
            log.exception("action gate sweep failed")
        try:
            await self.reclaim()
        except Exception:
            log.exception("action reclaim sweep failed")


async def _initial(action_id: int, run_id: str) -> dict[str, Any]:
    """The state a stranded action's run starts from (`force_approval`: see `reclaim`)."""
    return {"action_id": action_id, "run_id": run_id, "force_approval": True}
