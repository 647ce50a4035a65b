"""Runs of the incident graph: start, resume at a gate, recover after a restart, expire gates.

Thread id = run id. Every advance happens under a lease on the run (coordination backend), so
two replicas never drive one run at once; `durability="sync"` writes each checkpoint before the
next node starts.

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
from collections.abc import Coroutine
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from prometheus_client import Counter
from sqlalchemy import select

from storage import approvals, incidents
from storage.coordination import Coordination
from storage.models import Incident
from workflows.incident_graph import NODES, GraphDeps, IncidentState, build_graph

log = logging.getLogger(__name__)

RUN_LEASE = 600.0

TRANSITIONS = Counter("larkops_workflow_runs_total", "Incident workflow advances", ["outcome"])


class RunManager:
    def __init__(
        self,
        deps: GraphDeps,
        checkpointer: BaseCheckpointSaver[Any],
        coordination: Coordination,
    ) -> None:
        self.deps = deps
        self.coordination = coordination
        self.checkpointer = checkpointer
        self.graph: CompiledStateGraph[IncidentState] = build_graph(deps).compile(
            checkpointer=checkpointer
        )
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def config(run_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": run_id}}

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                TRANSITIONS.labels("error").inc()
                log.exception("workflow %s failed", what)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _advance(self, run_id: str, command: IncidentState | Command[Any] | None) -> None:
        lease = await self.coordination.acquire_wait(f"run:{run_id}", RUN_LEASE, patience=60)
        if lease is None:
            raise TimeoutError(f"run {run_id} is held by another worker")
        try:
            await self.graph.ainvoke(command, self.config(run_id), durability="sync")
            TRANSITIONS.labels("advanced").inc()
        finally:
            await self.coordination.release(lease)

    def start(self, incident_id: int, run_id: str, *, requester: str | None = None) -> None:
        """Start the run in the background (it goes until its first gate)."""
        initial: IncidentState = {
            "incident_id": incident_id,
            "run_id": run_id,
            "requester": requester,
        }
        self._spawn(self._advance(run_id, initial), f"start {run_id}")

    async def run_now(self, incident_id: int, run_id: str) -> None:
        """Start and wait until the run pauses or ends (tests, benchmarks)."""
        await self._advance(run_id, {"incident_id": incident_id, "run_id": run_id})

    async def pending_interrupt(self, run_id: str, token: str) -> str | None:
        """LangGraph's id of the run's pause at gate `token` (None: not paused there)."""
        snapshot = await self.graph.aget_state(self.config(run_id))
        for task in snapshot.tasks:
            for pause in task.interrupts:
                value = pause.value if isinstance(pause.value, dict) else {}
                if value.get("token") == token:
                    return str(pause.id)
        return None

    async def resume(
        self, run_id: str, token: str, decision: dict[str, Any], *, wait: bool = True
    ) -> bool:
        """Resume the run paused at gate `token` with `decision`; False when it is not paused
        there (already resumed, or another gate)."""
        interrupt_id = await self.pending_interrupt(run_id, token)
        if interrupt_id is None:
            return False
        command: Command[Any] = Command(resume={interrupt_id: decision})
        if wait:
            await self._advance(run_id, command)
        else:
            self._spawn(self._advance(run_id, command), f"resume {run_id}")
        return True

    async def recover(self) -> dict[str, int]:
        """Continue runs that a dead process left between nodes; report what was found."""
        counts = {"paused": 0, "continued": 0, "orphaned": 0, "finished": 0}
        async with self.deps.db.session() as session:
            active = (
                await session.scalars(
                    select(Incident).where(
                        Incident.status.in_(incidents.ACTIVE), Incident.storm.is_(False)
                    )
                )
            ).all()
        for incident in active:
            run_id = str(incident.run_id)
            snapshot = await self.graph.aget_state(self.config(run_id))
            if not snapshot.values and not snapshot.next:
                # the process died before the first checkpoint: start over
                counts["continued"] += 1
                self.start(incident.id, run_id)
                continue
            unknown = [name for name in snapshot.next if name not in NODES]
            if not snapshot.next and not snapshot.values.get("outcome"):
                # LangGraph reports no next step for a run paused at a node this graph does not
                # have: it would look finished while its incident waits forever
                unknown = await self._unknown_nodes(run_id) or ["(unknown step)"]
            if unknown:
                counts["orphaned"] += 1
                await self._orphaned(incident.id, run_id, unknown)
            elif not snapshot.next:
                counts["finished"] += 1
            elif any(task.interrupts for task in snapshot.tasks):
                counts["paused"] += 1
            else:
                counts["continued"] += 1
                self._spawn(self._advance(run_id, None), f"recover {run_id}")
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
        return sorted(targets - set(NODES))

    async def _orphaned(self, incident_id: int, run_id: str, unknown: list[str]) -> None:
        reason = (
            f"workflow changed: run {run_id} is paused at {', '.join(unknown)}, a step this "
            "version no longer has; handle this incident by hand"
        )
        log.error(reason)
        await approvals.cancel_open(self.deps.db, incident_id)
        await incidents.set_status(self.deps.db, incident_id, "escalated", escalation_reason=reason)
        await incidents.record_event(self.deps.db, incident_id, "workflow.orphaned", message=reason)
        await self.deps.presenter.show(incident_id)
        await self.deps.presenter.escalate(incident_id, reason)

    async def sweep_expired(self) -> int:
        """Close gates past their expiry and resume their runs with a timeout."""
        expired = await approvals.expire_due(self.deps.db)
        for row in expired:
            if row.incident_id is not None:
                await incidents.record_event(
                    self.deps.db, row.incident_id, "gate.expired", data={"gate": row.gate}
                )
            await self.resume(
                str(row.run_id), row.interrupt_id, {"decision": "timeout", "by": []}, wait=False
            )
        return len(expired)

    async def sweep_forever(self, every: float = 5.0) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.sweep_expired()
            await asyncio.sleep(every)

    async def drain(self, patience: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=patience)
