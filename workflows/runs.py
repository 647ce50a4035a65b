"""Runs of the incident graph: start, resume at a gate, recover after a restart, expire gates.

Thread id = run id. Every advance happens under a lease on the run (coordination backend), so
two replicas never drive one run at once; `durability="sync"` writes each checkpoint before the
next node starts. The lease is short (`RUN_LEASE`) and renewed while the run advances, so the
run of a replica that died is free again within that time; a worker that loses its lease to
another stops advancing at once. Under the lease the run's checkpoint is read again before it
is advanced: a start, a resume or a continuation that another worker already made is skipped.

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
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot
from prometheus_client import Counter
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import aliased

from storage import approvals, incidents
from storage.approvals import approvers_of
from storage.coordination import Coordination, Lease
from storage.models import Approval, Incident
from workflows import gates
from workflows.escalation import Cause
from workflows.incident_graph import NODES, GraphDeps, IncidentState, build_graph

log = logging.getLogger(__name__)

RUN_LEASE = 15.0  # seconds (as the scheduler lease); renewed every third of it while held
RECLAIM_AFTER = 5.0  # seconds an incident or a decided gate is left to its own worker first
RECENT_GATE = 60.0  # seconds after a gate opened that its run is still checked
SKIP = object()  # a plan's answer: nothing to do (another worker already did it)

TRANSITIONS = Counter("larkops_workflow_runs_total", "Incident workflow advances", ["outcome"])
# what to feed the graph, decided under the lease from the run's current snapshot
Plan = Callable[[StateSnapshot], Awaitable[Any]]


class LeaseLost(RuntimeError):
    """Another worker took the run's lease; this one stopped advancing it."""


@dataclass
class _Held:
    lease: Lease
    lost: bool = False


class RunManager:
    def __init__(
        self,
        deps: GraphDeps,
        checkpointer: BaseCheckpointSaver[Any],
        coordination: Coordination,
        *,
        reclaim_after: float = RECLAIM_AFTER,
    ) -> None:
        self.deps = deps
        self.reclaim_after = reclaim_after
        self.coordination = coordination
        self.checkpointer = checkpointer
        self.graph: CompiledStateGraph[IncidentState] = build_graph(deps).compile(
            checkpointer=checkpointer
        )
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
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
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

    def start(self, incident_id: int, run_id: str, *, requester: str | None = None) -> None:
        """Start the run in the background (it goes until its first gate)."""
        initial: IncidentState = {
            "incident_id": incident_id,
            "run_id": run_id,
            "requester": requester,
        }
        self._spawn(self._advance(run_id, _fresh(initial)), f"start {run_id}")

    async def run_now(self, incident_id: int, run_id: str) -> None:
        """Start and wait until the run pauses or ends (tests, benchmarks)."""
        await self._advance(run_id, _fresh({"incident_id": incident_id, "run_id": run_id}))

    async def pending_interrupt(self, run_id: str, token: str) -> str | None:
        """LangGraph's id of the run's pause at gate `token` (None: not paused there)."""
        snapshot = await self.graph.aget_state(self.config(run_id))
        return _paused_at(snapshot, token)

    async def resume(
        self, run_id: str, token: str, decision: dict[str, Any], *, wait: bool = True
    ) -> bool:
        """Resume the run paused at gate `token` with `decision`; False when it is not paused
        there (already resumed, or another gate)."""

        async def plan(snapshot: StateSnapshot) -> Any:
            interrupt_id = _paused_at(snapshot, token)  # under the lease: nobody else moves it
            return SKIP if interrupt_id is None else Command(resume={interrupt_id: decision})

        if wait:
            # waits for a worker still finishing the step that opened the gate (its card may
            # reach Lark a moment before the pause is checkpointed)
            return await self._advance(run_id, plan)
        if await self.pending_interrupt(run_id, token) is None:
            return False
        self._spawn(self._advance(run_id, plan), f"resume {run_id}")
        return True

    async def recover(self) -> dict[str, int]:
        """Continue runs that a dead process left between nodes; report what was found."""
        counts = {"paused": 0, "continued": 0, "orphaned": 0, "finished": 0}
        async with self.deps.db.session() as session:
            active = (
                await session.scalars(
                    select(Incident).where(
                        Incident.status.in_(incidents.WORKFLOW), Incident.storm.is_(False)
                    )
                )
            ).all()
        for incident in active:
            run_id = str(incident.run_id)
            snapshot = await self.graph.aget_state(self.config(run_id))
            if not snapshot.values and not snapshot.next:
                # the process died before the first checkpoint: start over
                counts["continued"] += 1
                self._spawn(self._reclaim(incident.id, run_id), f"recover {run_id}")
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
                counts["paused"] += 1  # a gate decided but not resumed: `reclaim` resumes it
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
        return sorted(targets - set(NODES))

    async def _orphaned(self, incident_id: int, run_id: str, unknown: list[str]) -> None:
        cause = Cause("workflow_changed", {"run": run_id, "steps": ", ".join(unknown)})
        reason = cause.sentence()
        log.error(reason)
        await approvals.cancel_open(self.deps.db, incident_id)
        await incidents.set_status(
            self.deps.db,
            incident_id,
            "escalated",
            escalation_reason=reason,
            escalation=cause.as_json(),
        )
        await incidents.record_event(self.deps.db, incident_id, "workflow.orphaned", message=reason)
        await self.deps.presenter.show(incident_id)
        await self.deps.presenter.escalate(incident_id, reason)

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
        stale = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, self.reclaim_after)
        later = aliased(Approval)
        recent = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, RECENT_GATE)
        # a gate just opened: its step may have died before its pause was checkpointed
        opening = exists().where(
            Approval.incident_id == Incident.id,
            Approval.run_id == Incident.run_id,
            Approval.status == "pending",
            Approval.created_at > recent,
            Approval.created_at < stale,
        )
        decided = exists().where(
            Approval.incident_id == Incident.id,
            Approval.run_id == Incident.run_id,
            Approval.status != "pending",
            Approval.decided_at < stale,
            ~exists().where(later.incident_id == Approval.incident_id, later.id > Approval.id),
        )
        async with self.deps.db.session() as session:
            found = (
                await session.execute(
                    select(Incident.id, Incident.run_id).where(
                        Incident.status.in_(incidents.WORKFLOW),
                        Incident.storm.is_(False),
                        Incident.created_at < stale,
                        or_(Incident.status != "awaiting_approval", decided, opening),
                    )
                )
            ).all()
        taken = 0
        now = time.monotonic()
        for incident_id, run in found:
            run_id = str(run)
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
            self._spawn(self._reclaimed(incident_id, run_id, lease), f"reclaim {run_id}")
        return taken

    async def _reclaimed(self, incident_id: int, run_id: str, lease: Lease) -> None:
        try:
            if await self._advance_held(run_id, lease, self._reclaim_plan(incident_id, run_id)):
                log.warning("workflow run %s reclaimed and advanced", run_id)
            self._backoff.pop(run_id, None)
        except Exception:
            failures = self._backoff.get(run_id, (0, 0.0))[0] + 1
            retry = time.monotonic() + min(300.0, 5.0 * 2 ** (failures - 1))
            self._backoff[run_id] = (failures, retry)
            log.exception("workflow run %s could not be reclaimed", run_id)

    async def _reclaim(self, incident_id: int, run_id: str) -> None:
        await self._advance(run_id, self._reclaim_plan(incident_id, run_id))

    def _reclaim_plan(self, incident_id: int, run_id: str) -> Plan:
        async def plan(snapshot: StateSnapshot) -> Any:
            if not snapshot.values and not snapshot.next:
                # the process died before the first checkpoint
                return {"incident_id": incident_id, "run_id": run_id}
            if not snapshot.next or any(name not in NODES for name in snapshot.next):
                return SKIP  # finished, or orphaned (`recover` escalates those)
            paused = [p for task in snapshot.tasks for p in task.interrupts]
            if not paused:
                return None  # between nodes: continue from the last checkpoint
            value = paused[0].value if isinstance(paused[0].value, dict) else {}
            gate = await approvals.find(
                self.deps.db, run_id, str(value.get("gate")), str(value.get("token"))
            )
            if gate is None or gate.status == "pending":
                return SKIP
            return Command(resume={str(paused[0].id): _decision_of(gate)})

        return plan

    async def sweep(self) -> None:
        """One round: expire due gates, then reclaim runs nobody drives."""
        with contextlib.suppress(Exception):
            await self.sweep_expired()
        try:
            await self.reclaim()
        except Exception:
            log.exception("workflow reclaim sweep failed")

    async def sweep_forever(self, every: float = 5.0) -> None:
        while True:
            await self.sweep()
            await asyncio.sleep(every)

    async def drain(self, patience: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=patience)


def _fresh(initial: IncidentState) -> Plan:
    """Start the run unless it already has a checkpoint (another worker started it)."""

    async def plan(snapshot: StateSnapshot) -> Any:
        return initial if not snapshot.values and not snapshot.next else SKIP

    return plan


def _paused_at(snapshot: StateSnapshot, token: str) -> str | None:
    """LangGraph's id of the snapshot's pause at gate `token`, if it is paused there."""
    for task in snapshot.tasks:
        for pause in task.interrupts:
            value = pause.value if isinstance(pause.value, dict) else {}
            if value.get("token") == token:
                return str(pause.id)
    return None


def _decision_of(gate: Approval) -> dict[str, Any]:
    """The resume value a decided gate stands for (as the click or the sweeper gave it)."""
    if gate.status == "approved":
        return {"decision": "approve", "by": list(approvers_of(gate))}
    if gate.status == "rejected":
        return {"decision": "reject", "by": [gate.decided_by] if gate.decided_by else []}
    if gate.status == "expired":
        return {"decision": "timeout", "by": []}
    return {"decision": "escalate", "by": []}  # cancelled while the incident stayed open
