"""The workflow sweep's reclaiming, in process (the end-to-end fault tests show it through real
crashes): a gate decided but never resumed is resumed with its decision, a run a failed worker
left between nodes is continued, a run a live worker holds is left alone, and a start or
resume another worker already made is not made again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from storage import approvals, incidents
from storage.coordination import MemoryCoordination
from storage.database import Database
from tests.integration.test_incident_graph import Harness, RecordingPresenter, ScriptedAdvisor
from workflows import gates
from workflows.approvers import Decider
from workflows.checkpoint import open_checkpointer
from workflows.gates import Click
from workflows.incident_graph import GatePolicy, GraphDeps, gate_token
from workflows.ports import JSON
from workflows.runs import RunManager


class FlakyAdvisor(ScriptedAdvisor):
    """Diagnosis fails while `down` (the database or a plugin away), then works."""

    down: bool = False

    async def diagnose(self, alert: object, *, incident_id: int, run_id: str) -> JSON:
        if self.down:
            raise ConnectionError("postgres went away")
        return await super().diagnose(alert, incident_id=incident_id, run_id=run_id)  # type: ignore[arg-type]


@pytest.fixture
async def cluster(migrated_db: Database, fresh_db_url: str) -> AsyncIterator[Harness]:
    """One harness whose `rebuilt()` managers share its coordination: other replicas."""
    shared = MemoryCoordination()
    advisor, presenter = FlakyAdvisor(), RecordingPresenter()
    async with open_checkpointer(fresh_db_url) as saver:
        deps = GraphDeps(migrated_db, advisor, presenter, GatePolicy(approvers=("ou_bob",)))
        harness = Harness(migrated_db, RunManager(deps, saver, shared), advisor, presenter, saver)
        harness.rebuilt = lambda: RunManager(deps, saver, shared)  # type: ignore[method-assign]
        yield harness
        await harness.manager.drain()


async def _age(db: Database, seconds: int = 30) -> None:
    """Make every incident and decision look `seconds` old (past the reclaim grace)."""
    async with db.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE incidents SET created_at = now() - interval '{seconds} seconds'")
        )
        await conn.execute(
            text(
                f"UPDATE approvals SET decided_at = now() - interval '{seconds} seconds' "
                "WHERE decided_at IS NOT NULL"
            )
        )


async def _gates(db: Database) -> list[tuple[str, str]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT gate, status FROM approvals ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


async def test_a_decided_gate_never_resumed_is_resumed_with_its_decision(
    cluster: Harness,
) -> None:
    incident_id, run_id = await cluster.incident()
    await cluster.manager.run_now(incident_id, run_id)
    token = gate_token(run_id, "diagnosis")
    # the click was claimed, then the process died before resuming the run
    assert await approvals.claim(cluster.db, run_id, "diagnosis", token, "ou_bob", "approve")
    other = cluster.rebuilt()
    assert await other.reclaim() == 0  # within the grace the clicking replica resumes it
    await _age(cluster.db)
    assert await other.reclaim() == 1
    await other.drain()
    assert await _gates(cluster.db) == [("diagnosis", "approved"), ("proposal", "pending")]
    assert await other.reclaim() == 0  # paused at a pending gate: nothing to do
    # the late resume of the dead process's click changes nothing now
    assert not await cluster.manager.resume(run_id, token, {"decision": "approve", "by": ["x"]})


async def test_a_run_left_between_nodes_is_continued_once(cluster: Harness) -> None:
    advisor = cluster.advisor
    assert isinstance(advisor, FlakyAdvisor)
    advisor.down = True
    incident_id, run_id = await cluster.incident()
    with pytest.raises(ConnectionError):
        await cluster.manager.run_now(incident_id, run_id)
    assert (await cluster.status(incident_id))[0] == "diagnosing"
    advisor.down = False
    await _age(cluster.db)
    first, second = cluster.rebuilt(), cluster.rebuilt()
    assert await first.reclaim() == 1
    assert await second.reclaim() == 0  # the first holds the run's lease
    await first.drain()
    assert (await cluster.status(incident_id))[0] == "awaiting_approval"
    assert await _gates(cluster.db) == [("diagnosis", "pending")]


async def test_a_run_a_live_worker_holds_is_left_alone(cluster: Harness) -> None:
    _, run_id = await cluster.incident()
    await _age(cluster.db)
    lease = await cluster.manager.coordination.acquire(f"run:{run_id}", 30)
    assert lease is not None
    assert await cluster.rebuilt().reclaim() == 0
    await cluster.manager.coordination.release(lease)
    other = cluster.rebuilt()
    assert await other.reclaim() == 1  # never started (its worker died): started now
    await other.drain()
    assert await _gates(cluster.db) == [("diagnosis", "pending")]


async def test_a_start_already_made_is_not_made_again(cluster: Harness) -> None:
    incident_id, run_id = await cluster.incident()
    await cluster.manager.run_now(incident_id, run_id)
    await cluster.rebuilt().run_now(incident_id, run_id)  # a second replica's late start
    async with cluster.db.engine.connect() as conn:
        started = await conn.scalar(
            text("SELECT count(*) FROM incident_events WHERE kind = 'workflow.started'")
        )
    assert started == 1


async def test_a_run_the_sweep_had_to_start_keeps_its_requester(cluster: Harness) -> None:
    """/diagnose by the only approver, then the process died before the run's first
    checkpoint: the sweep starts the run, and the approver still may not approve his own."""
    incident_id, run_id = await cluster.incident()
    await incidents.request_run(cluster.db, incident_id, "ou_bob")
    await _age(cluster.db)
    other = cluster.rebuilt()
    assert await other.reclaim() == 1
    await other.drain()
    policy = GatePolicy(approvers=("ou_bob",))
    click = Click(run_id, "diagnosis", gate_token(run_id, "diagnosis"), incident_id, "approve")
    verdict = await gates.decide(cluster.db, policy, click, Decider("ou_bob", approver=True), None)
    assert verdict.refusal == "own_request"
    assert await _gates(cluster.db) == [("diagnosis", "pending")]
