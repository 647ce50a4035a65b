"""The incident graph on real Postgres with the real checkpointer: routes, gates, clicks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from plugins.contract import AlertContext
from storage import approvals
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.models import Alert, Incident
from workflows.checkpoint import open_checkpointer
from workflows.escalation import INTERRUPTED
from workflows.incident_graph import GatePolicy, GraphDeps, gate_token
from workflows.payloads import ExecutionResult
from workflows.ports import JSON
from workflows.runs import RunManager


@dataclass
class ScriptedAdvisor:
    """Plays the advisor port with fixed answers; counts remediations actually run."""

    policy: str = "approve"
    required: int = 1
    proposal: bool = True
    execute_ok: bool = True
    verify_ok: bool = True
    executed: list[str] = field(default_factory=list)
    remembered: list[int] = field(default_factory=list)

    async def diagnose(self, alert: AlertContext, *, incident_id: int, run_id: str) -> JSON:
        return {
            "summary": f"diagnosed {alert.title}",
            "hypotheses": [["disk full", 0.8]],
            "evidence": [["http_check", "503"]],
            "next_checks": [],
            "provider": "rules",
        }

    async def propose(
        self,
        alert: AlertContext,
        diagnosis: JSON,
        *,
        incident_id: int | None = None,
        run_id: str | None = None,
    ) -> JSON | None:
        if not self.proposal:
            return None
        return {
            "plugin": "command",
            "params": {"template": "restart"},
            "title_zh": "重启",
            "title_en": "restart",
            "steps": ["restart"],
            "rationale": "it helps",
        }

    async def evaluate(self, proposal: JSON, alert: AlertContext) -> JSON:
        return {
            "kind": self.policy,
            "risk": "medium",
            "required_approvals": self.required,
            "reason": f"policy says {self.policy}",
        }

    async def remember(self, incident_id: int) -> None:
        self.remembered.append(incident_id)

    async def execute(
        self, proposal: JSON, *, incident_id: int, run_id: str, dry_run: bool = False
    ) -> JSON:
        self.executed.append(run_id)
        return {"ok": self.execute_ok, "summary": "restarted", "output": "ok", "data": {}}

    async def verify(self, alert: AlertContext, proposal: JSON, execution: JSON) -> JSON:
        return {"ok": self.verify_ok, "summary": "healthy" if self.verify_ok else "still down"}


@dataclass
class RecordingPresenter:
    shown: list[int] = field(default_factory=list)
    escalations: list[tuple[int, str]] = field(default_factory=list)

    async def show(self, incident_id: int) -> None:
        self.shown.append(incident_id)

    async def escalate(self, incident_id: int, reason: str) -> None:
        self.escalations.append((incident_id, reason))


@dataclass
class Harness:
    db: Database
    manager: RunManager
    advisor: ScriptedAdvisor
    presenter: RecordingPresenter
    saver: Any

    async def incident(self, title: str = "HighLatency") -> tuple[int, str]:
        async with self.db.session() as session:
            row = Incident(
                fingerprint=uuid.uuid4().hex[:16],
                title=title,
                chat_id="oc_ops",
                labels={"alertname": title},
            )
            session.add(row)
            await session.flush()
            session.add(
                Alert(
                    incident_id=row.id,
                    source="generic",
                    fingerprint=row.fingerprint,
                    title=title,
                    annotations={"url": "http://x"},
                )
            )
            return row.id, str(row.run_id)

    async def status(self, incident_id: int) -> tuple[str, str | None]:
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT status, escalation_reason FROM incidents WHERE id = :i"),
                    {"i": incident_id},
                )
            ).one()
        return row[0], row[1]

    async def click(self, run_id: str, gate: str, who: str, decision: str) -> bool:
        token = gate_token(run_id, gate)
        claim = await approvals.claim(self.db, run_id, gate, token, who, decision)  # type: ignore[arg-type]
        if claim is None:
            return False
        if claim.decided:
            await self.manager.resume(run_id, token, {"decision": decision, "by": [who]})
        return True

    def rebuilt(self) -> RunManager:
        """A new manager on the same database and checkpoints: a restarted process."""
        deps = GraphDeps(self.db, self.advisor, self.presenter, GatePolicy())
        return RunManager(deps, self.saver, MemoryCoordination())


@pytest.fixture
async def harness(migrated_db: Database, fresh_db_url: str) -> AsyncIterator[Harness]:
    advisor, presenter = ScriptedAdvisor(), RecordingPresenter()
    async with open_checkpointer(fresh_db_url) as saver:
        deps = GraphDeps(migrated_db, advisor, presenter, GatePolicy(approvers=("ou_bob",)))
        manager = RunManager(deps, saver, MemoryCoordination())
        yield Harness(migrated_db, manager, advisor, presenter, saver)
        await manager.drain()


async def _events(h: Harness, incident_id: int) -> list[str]:
    async with h.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT kind FROM incident_events WHERE incident_id = :i ORDER BY id"),
            {"i": incident_id},
        )
        return [r[0] for r in rows]


async def test_happy_path_through_both_gates(harness: Harness) -> None:
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    assert await harness.status(incident_id) == ("awaiting_approval", None)
    assert await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.status(incident_id) == ("awaiting_approval", None)  # proposal gate
    assert await harness.click(run_id, "proposal", "ou_bob", "approve")
    assert await harness.status(incident_id) == ("resolved", None)
    assert harness.advisor.executed == [run_id]
    assert await _events(harness, incident_id) == [
        "workflow.started",
        "workflow.diagnosed",
        "gate.opened",
        "workflow.proposed",
        "policy.decided",
        "gate.opened",
        "workflow.executed",
        "workflow.verified",
        "workflow.resolved",
    ]


@pytest.mark.parametrize("gate", ["diagnosis", "proposal"])
async def test_rejection_at_each_gate_escalates(harness: Harness, gate: str) -> None:
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    if gate == "proposal":
        await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.click(run_id, gate, "ou_carol", "reject")
    assert await harness.status(incident_id) == ("escalated", f"{gate} rejected by ou_carol")
    assert harness.advisor.executed == []
    assert harness.presenter.escalations[-1][0] == incident_id


async def test_policy_auto_skips_the_second_gate_and_refuse_escalates(harness: Harness) -> None:
    harness.advisor.policy = "auto"
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.status(incident_id) == ("resolved", None)
    assert (
        await approvals.find(harness.db, run_id, "proposal", gate_token(run_id, "proposal")) is None
    )

    harness.advisor.policy = "refuse"
    second, run2 = await harness.incident()
    await harness.manager.run_now(second, run2)
    await harness.click(run2, "diagnosis", "ou_bob", "approve")
    status, reason = await harness.status(second)
    assert status == "escalated"
    assert reason == "policy refused the fix: policy says refuse"


async def test_no_proposal_and_failed_verification_escalate(harness: Harness) -> None:
    harness.advisor.proposal = False
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.status(incident_id) == ("escalated", "no known remediation for this alert")

    harness.advisor.proposal, harness.advisor.policy, harness.advisor.verify_ok = (
        True,
        "auto",
        False,
    )
    second, run2 = await harness.incident()
    await harness.manager.run_now(second, run2)
    await harness.click(run2, "diagnosis", "ou_bob", "approve")
    assert await harness.status(second) == ("escalated", "verification failed: still down")


async def test_stale_and_duplicate_clicks_change_nothing(harness: Harness) -> None:
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    assert await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    # the same click again, and a click on the earlier gate's reject button
    assert not await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert not await harness.click(run_id, "diagnosis", "ou_carol", "reject")
    assert not await harness.manager.resume(
        run_id, gate_token(run_id, "diagnosis"), {"decision": "reject", "by": ["x"]}
    )
    assert await harness.status(incident_id) == ("awaiting_approval", None)
    assert await harness.click(run_id, "proposal", "ou_bob", "approve")
    assert harness.advisor.executed == [run_id]


async def test_two_people_clicking_at_the_same_instant_execute_once(harness: Harness) -> None:
    harness.advisor.policy = "auto"
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    results = await asyncio.gather(
        *(harness.click(run_id, "diagnosis", who, "approve") for who in ("ou_a", "ou_b", "ou_c"))
    )
    assert results.count(True) == 1
    assert harness.advisor.executed == [run_id]


async def test_critical_needs_two_distinct_approvers(harness: Harness) -> None:
    harness.advisor.required = 2
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.click(run_id, "proposal", "ou_bob", "approve")  # 1 of 2
    assert not await harness.click(run_id, "proposal", "ou_bob", "approve")  # same person
    assert await harness.status(incident_id) == ("awaiting_approval", None)
    assert harness.advisor.executed == []
    assert await harness.click(run_id, "proposal", "ou_carol", "approve")  # 2 of 2
    assert await harness.status(incident_id) == ("resolved", None)
    row = await approvals.find(harness.db, run_id, "proposal", gate_token(run_id, "proposal"))
    assert row is not None
    assert [a["open_id"] for a in row.approvals] == ["ou_bob", "ou_carol"]


async def test_expired_gate_times_out_and_escalates(harness: Harness) -> None:
    incident_id, run_id = await harness.incident()
    harness.manager.deps.gates = GatePolicy(ttl=timedelta(seconds=-1))
    await harness.manager.run_now(incident_id, run_id)
    assert not await harness.click(run_id, "diagnosis", "ou_bob", "approve")  # too late
    assert await harness.manager.sweep_expired() == 1
    await harness.manager.drain()
    assert await harness.status(incident_id) == ("escalated", "diagnosis approval timed out")
    assert await harness.manager.sweep_expired() == 0


async def test_paused_run_survives_a_restart(harness: Harness) -> None:
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    restarted = harness.rebuilt()
    assert (await restarted.recover())["paused"] == 1
    token = gate_token(run_id, "diagnosis")
    claim = await approvals.claim(harness.db, run_id, "diagnosis", token, "ou_bob", "approve")
    assert claim is not None
    assert await restarted.resume(run_id, token, {"decision": "approve", "by": ["ou_bob"]})
    assert await harness.status(incident_id) == ("awaiting_approval", None)


async def test_remediation_interrupted_mid_run_is_not_repeated(harness: Harness) -> None:
    from storage.executions import begin_execution

    harness.advisor.policy = "auto"
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    # an earlier process claimed the step and died while the command ran
    _, fresh = await begin_execution(
        harness.db, run_id, "execute", "command", {}, incident_id=incident_id
    )
    assert fresh
    await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert harness.advisor.executed == []
    status, reason = await harness.status(incident_id)
    assert status == "escalated"
    assert reason is not None
    assert "not run again" in reason


async def test_a_run_that_died_inside_its_remediation_is_recovered_on_start(
    harness: Harness,
) -> None:
    """Approved, then the process died while the fix ran (inside the remediation subgraph).
    The run still shows the pause it was resumed from; its gate is decided, so a restart
    continues it at once (not counted as waiting for a button): the fix is not run again."""
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    started = asyncio.Event()
    ran = harness.advisor.execute

    async def dies(proposal: Any, **kwargs: Any) -> ExecutionResult:
        started.set()
        await asyncio.Event().wait()  # until the process is gone
        return await ran(proposal, **kwargs)

    harness.advisor.execute = dies  # type: ignore[method-assign]
    clicked = asyncio.create_task(harness.click(run_id, "proposal", "ou_bob", "approve"))
    await started.wait()
    clicked.cancel()  # the process dies: nothing after this point is written
    with pytest.raises(asyncio.CancelledError):
        await clicked
    harness.advisor.execute = ran  # type: ignore[method-assign]

    restarted = harness.rebuilt()
    assert await restarted.recover() == {"paused": 0, "continued": 1, "orphaned": 0, "finished": 0}
    await restarted.drain()
    status, reason = await harness.status(incident_id)
    assert status == "escalated"
    assert reason == f"remediation failed: {INTERRUPTED}"
    assert harness.advisor.executed == []  # the fix ran only in the process that died


async def test_a_fix_cut_short_says_so_on_every_later_attempt(harness: Harness) -> None:
    """The step's result carries the `interrupted` flag, not only the first time it is found
    cut short: an attempt after that one reads it from the execution row, and the escalation
    cause comes from the flag, never from the summary's words."""
    from storage.executions import begin_execution
    from workflows.escalation import cause_of
    from workflows.remediation import Step, run_once

    incident_id, run_id = await harness.incident()
    _, fresh = await begin_execution(
        harness.db, run_id, "execute", "command", {}, incident_id=incident_id
    )
    assert fresh  # an earlier process claimed the step and died while the command ran

    async def act() -> ExecutionResult:
        raise AssertionError("a fix cut short is never run again")

    step = Step(run_id, "execute", "command", {}, incident_id=incident_id)
    first = await run_once(harness.db, step, act)
    again = await run_once(harness.db, step, act)
    assert first.get("interrupted") is True
    assert again.get("interrupted") is True
    assert cause_of({"execution": {**again, "summary": "anything"}}).code == "fix_interrupted"
    assert cause_of({"execution": {"ok": False, "summary": "disk full"}}).code == "fix_failed"


async def test_resolved_meanwhile_never_proposes(harness: Harness) -> None:
    from storage.incidents import set_status

    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    await set_status(harness.db, incident_id, "resolved", by="alert")
    await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.status(incident_id) == ("resolved", None)
    assert "workflow.proposed" not in await _events(harness, incident_id)


async def test_run_paused_at_a_renamed_node_is_escalated_not_orphaned(harness: Harness) -> None:
    """An older version paused this run at `await_approval`, a node this version renamed."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    from workflows.incident_graph import IncidentState

    async def await_approval(state: IncidentState) -> IncidentState:
        interrupt({"gate": "diagnosis", "token": "old-token"})
        return {}

    old: StateGraph[IncidentState] = StateGraph(IncidentState)
    old.add_node("await_approval", await_approval)
    old.add_edge(START, "await_approval")
    old.add_edge("await_approval", END)
    incident_id, run_id = await harness.incident()
    await old.compile(checkpointer=harness.saver).ainvoke(
        {"incident_id": incident_id, "run_id": run_id}, harness.manager.config(run_id)
    )
    from storage.incidents import set_status

    await set_status(harness.db, incident_id, "awaiting_approval", by="workflow")

    counts = await harness.rebuilt().recover()
    assert counts["orphaned"] == 1
    status, reason = await harness.status(incident_id)
    assert status == "escalated"
    assert reason is not None
    assert "await_approval" in reason
    assert "no longer has" in reason
    assert "workflow.orphaned" in await _events(harness, incident_id)
    assert harness.advisor.remembered == [incident_id]  # /similar finds it


class Killed(Exception):
    """The process dies here (SIGKILL), as far as the run's checkpoints can tell."""


async def test_a_run_killed_between_a_steps_writes_and_its_checkpoint_goes_on(
    harness: Harness,
) -> None:
    """The process died after a step's writes were saved and before the checkpoint that ends
    the step. LangGraph then reports no next step (the step has its writes), though the run is
    not finished: recovery continues it, where it used to escalate the incident as paused at
    "(unknown step)" (seen under load in the SIGKILL suite)."""
    incident_id, run_id = await harness.incident()
    real = harness.saver.aput

    async def dying(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if metadata.get("step") == 2:  # the checkpoint after `triage`, whose writes are saved
            raise Killed
        return await real(config, checkpoint, metadata, versions)

    harness.saver.aput = dying
    with pytest.raises(Killed):
        await harness.manager.run_now(incident_id, run_id)
    harness.saver.aput = real
    snapshot = await harness.manager.graph.aget_state(harness.manager.config(run_id))
    assert snapshot.next == ()  # what LangGraph reports at that moment
    assert [task.name for task in snapshot.tasks] == ["triage"]

    manager = harness.rebuilt()
    counts = await manager.recover()
    await manager.drain()

    assert counts == {"paused": 0, "continued": 1, "orphaned": 0, "finished": 0}
    assert await harness.status(incident_id) == ("awaiting_approval", None)  # diagnosis gate
    events = await _events(harness, incident_id)
    assert "workflow.orphaned" not in events
    assert events.count("workflow.diagnosed") == 1


async def test_a_run_killed_after_its_remediation_ended_goes_on_to_resolve(
    harness: Harness,
) -> None:
    """The remediation subgraph saved its last checkpoint (the fix verified), then the process
    died before the run's own checkpoint after `remediate`. Recovery re-enters `remediate`:
    the subgraph hands back what it ended with, nothing runs again, the incident resolves."""
    harness.advisor.policy = "auto"
    incident_id, run_id = await harness.incident()
    real = harness.saver.aput
    verified = False

    async def dying(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        nonlocal verified
        inside = config["configurable"].get("checkpoint_ns", "") != ""
        if inside and "verification" in checkpoint["channel_values"]:
            verified = True
        elif verified and not inside:
            raise Killed  # the run's checkpoint after `remediate` is never written
        return await real(config, checkpoint, metadata, versions)

    await harness.manager.run_now(incident_id, run_id)
    harness.saver.aput = dying
    with pytest.raises(Killed):
        await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    harness.saver.aput = real
    assert verified
    assert harness.advisor.executed == [run_id]

    manager = harness.rebuilt()
    assert (await manager.recover())["continued"] == 1
    await manager.drain()
    assert await harness.status(incident_id) == ("resolved", None)
    assert harness.advisor.executed == [run_id]  # once
    events = await _events(harness, incident_id)
    assert events.count("workflow.executed") == 1
    assert events.count("workflow.verified") == 1


async def test_checkpointer_that_cannot_be_set_up_stops_start_up() -> None:
    """No silent fallback to an in-memory checkpointer."""
    from workflows.checkpoint import CheckpointerError

    with pytest.raises(CheckpointerError, match="cannot open the checkpoint pool") as caught:
        async with open_checkpointer("postgresql://nobody@127.0.0.1:1/none"):
            pass
    assert caught.value.reason == "pool"


async def test_checkpointer_writes_are_committed(harness: Harness, fresh_db_url: str) -> None:
    """A paused run's checkpoint is visible to a brand-new connection (autocommit works)."""
    import psycopg

    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    with psycopg.connect(fresh_db_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (run_id,)
        ).fetchone()
    assert count is not None
    assert count[0] > 0
