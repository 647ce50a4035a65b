"""Driving a checkpointed LangGraph run safely: one worker at a time, every step saved.

Thread id = run id. Every advance happens under a lease on the run (coordination backend), so
two replicas never drive one run at once; `durability="sync"` writes each checkpoint before the
next node starts. The lease is short (`RUN_LEASE`) and renewed while the run advances, so the
run of a replica that died is free again within that time; a worker that loses its lease to
another stops advancing at once. Under the lease the run's checkpoint is read again before it
is advanced (a `Plan`): a start, a resume or a continuation that another worker already made is
skipped.

The incident workflow (`workflows.runs.RunManager`) and the remediation runs of actions
(`workflows.action_runs.ActionRuns`) are both driven this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot
from prometheus_client import Counter

from storage import approvals
from storage.approvals import approvers_of
from storage.coordination import Coordination, Lease
from storage.database import Database
from storage.models import Approval
from storage.tasks import cancel
from workflows.payloads import GateDecision

log = logging.getLogger(__name__)

RUN_LEASE = 15.0  # seconds (as the scheduler lease); renewed every third of it while held
SKIP = object()  # a plan's answer: nothing to do (another worker already did it)

TRANSITIONS = Counter("larkops_workflow_runs_total", "Incident workflow advances", ["outcome"])
# what to feed the graph, decided under the lease from the run's current snapshot
Plan = Callable[[StateSnapshot], Awaitable[Any]]
Initial = Callable[[], Awaitable[Mapping[str, Any]]]  # a stranded run's initial state, read


class LeaseLost(RuntimeError):
    """Another worker took the run's lease; this one stopped advancing it."""


@dataclass
class _Held:
    lease: Lease
    lost: bool = False


class GraphDriver:
    """Starts, resumes and continues runs of one compiled graph under their leases."""

    def __init__(
        self,
        db: Database,
        graph: CompiledStateGraph[Any],
        nodes: Collection[str],
        checkpointer: BaseCheckpointSaver[Any],
        coordination: Coordination,
    ) -> None:
        self.db = db
        self.graph = graph
        # a run killed after its input's checkpoint and before its first step waits at START
        self.nodes: frozenset[str] = frozenset(nodes) | {START}
        self.checkpointer = checkpointer
        self.coordination = coordination
        self._tasks: set[asyncio.Task[None]] = set()
        self._backoff: dict[str, tuple[int, float]] = {}  # run id -> (failures, retry after)

    @staticmethod
    def config(run_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": run_id}}

    def _spawn(self, work: Coroutine[Any, Any, object], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                TRANSITIONS.labels("error").inc()
                log.exception("workflow %s failed", what)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _advance(self, run_id: str, plan: Plan) -> bool:
        """Take the run's lease (waiting for another worker to finish), then advance it as
        `plan` says; False when the plan found nothing to do."""
        lease = await self.coordination.acquire_wait(f"run:{run_id}", RUN_LEASE, patience=60)
        if lease is None:
            raise TimeoutError(f"run {run_id} is held by another worker")
        return await self._advance_held(run_id, lease, plan)

    async def _advance_held(self, run_id: str, lease: Lease, plan: Plan) -> bool:
        held = _Held(lease)
        task = asyncio.current_task()
        assert task is not None
        keeper = asyncio.create_task(self._keep(held, task))
        try:
            command = await plan(await self.graph.aget_state(self.config(run_id)))
            if command is SKIP:
                return False
            await self.graph.ainvoke(command, self.config(run_id), durability="sync")
            TRANSITIONS.labels("advanced").inc()
            return True
        except asyncio.CancelledError:
            if not held.lost:
                raise
            task.uncancel()
            raise LeaseLost(f"run {run_id}: another worker took the lease") from None
        finally:
            await cancel(keeper)
            with contextlib.suppress(Exception):
                await self.coordination.release(held.lease)

    async def _keep(self, held: _Held, task: asyncio.Task[Any]) -> None:
        """Renew the lease while the run advances. While the backend cannot be reached nobody
        else can take it either, so keep going and take it again when it answers; if another
        worker holds it by then, stop this one (it continues from the last checkpoint)."""
        name = held.lease.name
        while True:
            await asyncio.sleep(RUN_LEASE / 3)
            try:
                if await self.coordination.renew(held.lease, RUN_LEASE):
                    continue
                again = await self.coordination.acquire(name, RUN_LEASE)
            except Exception as exc:
                log.warning("workflow lease %s not renewed (%s); retrying", name, exc)
                continue
            if again is not None:
                held.lease = again
                continue
            log.error("workflow lease %s taken by another worker; stopping here", name)
            held.lost = True
            task.cancel()
            return

    async def pending_interrupt(self, run_id: str, token: str) -> str | None:
        """LangGraph's id of the run's pause at gate `token` (None: not paused there)."""
        snapshot = await self.graph.aget_state(self.config(run_id))
        return paused_at(snapshot, token)

    async def resume(
        self, run_id: str, token: str, decision: GateDecision, *, wait: bool = True
    ) -> bool:
        """Resume the run paused at gate `token` with `decision`; False when it is not paused
        there (already resumed, or another gate)."""

        async def plan(snapshot: StateSnapshot) -> Any:
            interrupt_id = paused_at(snapshot, token)  # under the lease: nobody else moves it
            return SKIP if interrupt_id is None else Command(resume={interrupt_id: decision})

        if wait:
            # waits for a worker still finishing the step that opened the gate (its card may
            # reach Lark a moment before the pause is checkpointed)
            return await self._advance(run_id, plan)
        if await self.pending_interrupt(run_id, token) is None:
            return False
        self._spawn(self._advance(run_id, plan), f"resume {run_id}")
        return True

    def continuation(self, run_id: str, initial: Initial) -> Plan:
        """The plan for a run nobody drives: start it (no checkpoint yet: its initial state is
        read then), continue it from its last checkpoint, or resume it with the stored decision
        of the gate it is paused at; nothing when it is finished, orphaned or still waiting for
        its button (what a sweep finds most: a gate opened in the last minute)."""

        async def plan(snapshot: StateSnapshot) -> Any:
            if not snapshot.values and not snapshot.next:
                return dict(await initial())  # the process died before the first checkpoint
            if between_steps(snapshot):
                return None  # the last step's writes are saved: go on from them
            if not snapshot.next or any(name not in self.nodes for name in snapshot.next):
                return SKIP  # finished, or orphaned
            if not any(task.interrupts for task in snapshot.tasks):
                return None  # between nodes: continue from the last checkpoint
            decided = await self.decided(run_id, snapshot)
            return SKIP if decided is None else decided

        return plan

    async def decided(self, run_id: str, snapshot: StateSnapshot) -> Command[Any] | None:
        """The resume for the gate the run is paused at, from the gate's stored decision; None
        while it waits for its button. A run whose remediation subgraph was resumed and then
        died inside it (mid-execute) still shows the pause it was resumed from: its gate is
        decided, and resuming it again goes on inside the subgraph from its last checkpoint."""
        paused = [p for task in snapshot.tasks for p in task.interrupts]
        if not paused:
            return None
        value = paused[0].value if isinstance(paused[0].value, dict) else {}
        gate = await approvals.find(
            self.db, run_id, str(value.get("gate")), str(value.get("token"))
        )
        if gate is None or gate.status == "pending":
            return None
        return Command(resume={str(paused[0].id): decision_of(gate)})

    async def take_up(self, stranded: list[tuple[str, Initial]]) -> int:
        """Continue each stranded run (run id, its initial state when read) in the background
        under its lease, skipping runs a live worker holds and runs backing off after
        failures; how many were taken up. The initial state is read only for a run that starts
        over: a sweep finds runs live workers drive, or paused at a gate, every few seconds."""
        taken = 0
        now = time.monotonic()
        for run_id, initial in stranded:
            if self._backoff.get(run_id, (0, 0.0))[1] > now:
                continue
            try:
                lease = await self.coordination.acquire(f"run:{run_id}", RUN_LEASE)
            except Exception as exc:  # Redis away: nobody advances anything; next sweep
                log.warning("workflow reclaim paused: %s", exc)
                break
            if lease is None:
                continue  # a live worker drives it
            taken += 1
            self._spawn(self._taken_up(run_id, lease, initial), f"reclaim {run_id}")
        return taken

    async def _taken_up(self, run_id: str, lease: Lease, initial: Initial) -> None:
        try:
            if await self._advance_held(run_id, lease, self.continuation(run_id, initial)):
                log.warning("workflow run %s reclaimed and advanced", run_id)
            self._backoff.pop(run_id, None)
        except Exception:
            failures = self._backoff.get(run_id, (0, 0.0))[0] + 1
            retry = time.monotonic() + min(300.0, 5.0 * 2 ** (failures - 1))
            self._backoff[run_id] = (failures, retry)
            log.exception("workflow run %s could not be reclaimed", run_id)

    async def drain(self, patience: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=patience)


def between_steps(snapshot: StateSnapshot) -> bool:
    """The process died after a step's writes were saved and before the checkpoint that ends
    the step: LangGraph reports no next step (the step has its writes) but still has the task,
    while a finished run, or one paused at a step this graph does not have, has neither."""
    return not snapshot.next and bool(snapshot.tasks)


def fresh(initial: Mapping[str, Any]) -> Plan:
    """Start the run unless it already has a checkpoint (another worker started it)."""

    async def plan(snapshot: StateSnapshot) -> Any:
        return dict(initial) if not snapshot.values and not snapshot.next else SKIP

    return plan


def paused_at(snapshot: StateSnapshot, token: str) -> str | None:
    """LangGraph's id of the snapshot's pause at gate `token`, if it is paused there."""
    for task in snapshot.tasks:
        for pause in task.interrupts:
            value = pause.value if isinstance(pause.value, dict) else {}
            if value.get("token") == token:
                return str(pause.id)
    return None


def decision_of(gate: Approval) -> GateDecision:
    """The resume value a decided gate stands for (as the click or the sweeper gave it)."""
    if gate.status == "approved":
        return {"decision": "approve", "by": list(approvers_of(gate))}
    if gate.status == "rejected":
        return {"decision": "reject", "by": [gate.decided_by] if gate.decided_by else []}
    if gate.status == "expired":
        return {"decision": "timeout", "by": []}
    return {"decision": "escalate", "by": []}  # cancelled while the incident stayed open
