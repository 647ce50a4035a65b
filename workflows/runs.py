"""Runs of the incident graph: start, resume at a gate, recover after a restart, expire gates.

Each run is driven under its lease with every step checkpointed (`workflows.driver`).

Reclaiming (`reclaim`, every sweep on every replica): a run nobody drives any more — its worker
died, or a node failed while Postgres or Redis was away — is continued from its last
checkpoint (also when its step died just after opening a gate, before the pause was
checkpointed); a run paused at a gate that was decided but never resumed (the process died
right after the click was claimed, or the resume failed) is resumed with the stored decision.

Recovery (`recover`) looks at every active incident: a run paused at a gate waits for its
button; a run that stopped between nodes (the process died) is continued; a run whose
checkpoint names a node this graph no longer has is not silently dropped (LangGraph would
report it as finished): it is escalated with a clear reason and its buttons stop working.
Migration path for a renamed node: keep the old name registered (an alias node with the same
function) until no run is paused there any more.

Usage::

    manager = RunManager(deps, saver, coordination)
    manager.start(incident_id, run_id)                  # in the background
    await manager.resume(run_id, token, {"decision": "approve", "by": ["ou_bob"]})
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from storage import approvals, incidents
from storage.coordination import Coordination
from storage.notices import paced
from workflows import gates
from workflows.driver import GraphDriver, between_steps, fresh
from workflows.escalation import Cause
from workflows.incident_graph import GRAPH_NODES, GraphDeps, IncidentState, build_graph

log = logging.getLogger(__name__)

RECLAIM_AFTER = 5.0  # seconds an incident or a decided gate is left to its own worker first
RECENT_GATE = 60.0  # seconds after a gate opened that its run is still checked


class RunManager(GraphDriver):
    def __init__(
        self,
        deps: GraphDeps,
        checkpointer: BaseCheckpointSaver[Any],
        coordination: Coordination,
        *,
        reclaim_after: float = RECLAIM_AFTER,
    ) -> None:
        graph = build_graph(deps).compile(checkpointer=checkpointer)
        super().__init__(deps.db, graph, GRAPH_NODES, checkpointer, coordination)
        self.deps = deps
        self.reclaim_after = reclaim_after

    def start(self, incident_id: int, run_id: str, *, requester: str | None = None) -> None:
        """Start the run in the background (it goes until its first gate)."""
        initial: IncidentState = {
            "incident_id": incident_id,
            "run_id": run_id,
            "requester": requester,
        }
        self._spawn(self._advance(run_id, fresh(initial)), f"start {run_id}")

    async def run_now(self, incident_id: int, run_id: str) -> None:
        """Start and wait until the run pauses or ends (tests, benchmarks)."""
        await self._advance(run_id, fresh({"incident_id": incident_id, "run_id": run_id}))

    async def recover(self) -> dict[str, int]:
        """Continue runs that a dead process left between nodes; report what was found."""
        counts = {"paused": 0, "continued": 0, "orphaned": 0, "finished": 0}
        active = await incidents.in_workflow(self.deps.db)
        for incident in active:
            run_id = str(incident.run_id)
            snapshot = await self.graph.aget_state(self.config(run_id))
            if not snapshot.values and not snapshot.next:
                # the process died before the first checkpoint: start over
                counts["continued"] += 1
                self._spawn(self._reclaim(incident.id, run_id), f"recover {run_id}")
                continue
            unknown = [name for name in snapshot.next if name not in self.nodes]
            ended = not snapshot.next and not between_steps(snapshot)
            if ended and not snapshot.values.get("outcome"):
                # LangGraph reports no next step for a run paused at a node this graph does not
                # have: it would look finished while its incident waits forever
                unknown = await self._unknown_nodes(run_id) or ["(unknown step)"]
            if unknown:
                counts["orphaned"] += 1
                await self._orphaned(incident.id, run_id, unknown)
            elif ended:
                counts["finished"] += 1
            elif await self.decided(run_id, snapshot) is None and any(
                task.interrupts for task in snapshot.tasks
            ):
                counts["paused"] += 1  # waits for its button
            else:
                counts["continued"] += 1
                self._spawn(self._reclaim(incident.id, run_id), f"recover {run_id}")
        if any(counts.values()):
            log.info("workflow recovery: %s", counts)
        return counts

    async def _unknown_nodes(self, run_id: str) -> list[str]:
        """Nodes the run's checkpoint was headed for that this graph does not know."""
        saved = await self.checkpointer.aget_tuple(self.config(run_id))
        if saved is None:
            return []
        channels = saved.checkpoint.get("channel_versions", {})
        targets = {c.removeprefix("branch:to:") for c in channels if c.startswith("branch:to:")}
        return sorted(targets - self.nodes)

    async def _orphaned(self, incident_id: int, run_id: str, unknown: list[str]) -> None:
        cause = Cause("workflow_changed", {"run": run_id, "steps": ", ".join(unknown)})
        reason = cause.sentence()
        log.error(reason)
        await approvals.cancel_open(self.deps.db, incident_id)
        await incidents.set_status(
            self.deps.db,
            incident_id,
            "escalated",
            by="workflow",
            escalation_reason=reason,
            escalation=cause.as_json(),
        )
        await incidents.record_event(self.deps.db, incident_id, "workflow.orphaned", message=reason)
        await self.deps.presenter.show(incident_id)
        await self.deps.presenter.escalate(incident_id, reason)
        await self.deps.advisor.remember(incident_id)  # /similar finds every escalated one

    async def sweep_expired(self) -> int:
        """Close gates past their expiry and resume their runs with a timeout."""
        expired = await gates.sweep(self.deps.db, incident_gates=True)
        for row in expired:
            if row.incident_id is not None:
                await incidents.record_event(
                    self.deps.db, row.incident_id, "gate.expired", data={"gate": row.gate}
                )
            await self.resume(
                str(row.run_id), row.interrupt_id, {"decision": "timeout", "by": []}, wait=False
            )
        return len(expired)

    async def reclaim(self) -> int:
        """Take up the runs nobody drives (see the module docstring), each advanced in the
        background under its lease; how many were taken up."""
        found = await incidents.unattended_runs(
            self.deps.db, stale_after=self.reclaim_after, recent_gate=RECENT_GATE
        )
        return await self.take_up(
            [
                (str(run), partial(self._initial, incident_id, str(run)))
                for incident_id, run in found
            ]
        )

    async def _initial(self, incident_id: int, run_id: str) -> IncidentState:
        """The state a run starts from when the sweep has to start it: with its requester."""
        requester = await incidents.run_requester(self.deps.db, incident_id)
        return {"incident_id": incident_id, "run_id": run_id, "requester": requester}

    async def _reclaim(self, incident_id: int, run_id: str) -> None:
        await self._advance(
            run_id, self.continuation(run_id, partial(self._initial, incident_id, run_id))
        )

    async def sweep(self) -> None:
        """One round: expire due gates, then reclaim runs nobody drives."""
        with contextlib.suppress(Exception):
            await self.sweep_expired()
        try:
            await self.reclaim()
        except Exception:
            log.exception("workflow reclaim sweep failed")

    async def sweep_forever(self, every: float = 5.0, changed: asyncio.Event | None = None) -> None:
        """`sweep` every `every` seconds while incidents are in flight; with nothing in flight,
        after the next opened incident or gate change (`changed`), or a minute."""
        await paced(
            self.sweep, lambda: incidents.in_flight(self.deps.db), every=every, changed=changed
        )
