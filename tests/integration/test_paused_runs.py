"""Runs paused or killed by an earlier version go on with this one: the rows and checkpoints of
`tests/fixtures/paused_runs/runs.json` (written by its `make.py` on the version before the
remediation subgraph) are loaded into a fresh database, then clicked or reclaimed.

- an incident run paused at its proposal gate: approved, its fix runs once, the incident
  resolves and its card is redrawn;
- an incident run killed while its fix ran: recovered, the fix is not run again, the incident
  escalates as interrupted;
- an action run (`/run`) paused at its gate: approved, its plugin runs once, it succeeds;
- an action run killed while its plugin ran: taken up, not run again, failed as interrupted.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from storage import actions
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.models import Action
from tests.fixtures.paused_runs.make import TABLES, Advisor, Presenter
from workflows import gates
from workflows.action_graph import GATE, ActionDeps
from workflows.action_runs import ActionRuns
from workflows.approvers import Decider, GatePolicy
from workflows.checkpoint import open_checkpointer
from workflows.escalation import INTERRUPTED
from workflows.incident_graph import GraphDeps, gate_token
from workflows.payloads import ExecutionResult, gate_decision
from workflows.runs import RunManager

FIXTURE = Path(__file__).parents[1] / "fixtures" / "paused_runs" / "runs.json"
POLICY = GatePolicy(approvers=("ou_bob",))
BOB = Decider("ou_bob")


@dataclass
class Shown(Presenter):
    """The presenter port, noting each card redrawn."""

    shown: list[int] = field(default_factory=list)

    async def show(self, incident_id: int) -> None:
        self.shown.append(incident_id)


@dataclass
class Desk:
    """The action desk port, noting each plugin run and card redrawn."""

    executed: list[int] = field(default_factory=list)
    shown: list[int] = field(default_factory=list)

    async def judge(self, action: Action, *, force_approval: bool) -> tuple[dict[str, Any], bool]:
        raise AssertionError("the policy was asked before the earlier version paused")

    async def execute(self, action: Action) -> ExecutionResult:
        self.executed.append(action.id)
        return {"ok": True, "summary": "restarted", "output": "ok"}

    async def audit(
        self, action: Action, kind: str, actor: str, message: str, trace_id: str | None, **data: Any
    ) -> None:
        return None

    async def show(self, action_id: int) -> None:
        self.shown.append(action_id)


@dataclass
class World:
    db: Database
    dsn: str
    incidents: RunManager
    actions: ActionRuns
    advisor: Advisor
    presenter: Shown
    desk: Desk

    async def one(self, query: str, *args: object) -> tuple[Any, ...]:
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            found = await (await conn.execute(query, args)).fetchone()
        assert found is not None, query
        return tuple(found)

    async def incident(self, title: str) -> tuple[int, str]:
        found = await self.one("SELECT id, run_id::text FROM incidents WHERE title = %s", title)
        return int(found[0]), str(found[1])

    async def action(self, service: str) -> Action:
        found = await self.one(
            "SELECT id FROM actions WHERE params->'args'->>'service' = %s", service
        )
        action = await actions.get(self.db, int(found[0]))
        assert action is not None
        return action

    async def executions(self, run_id: str) -> list[tuple[str, str]]:
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            found = await conn.execute(
                "SELECT status, coalesce(error, '') FROM executions WHERE run_id = %s", (run_id,)
            )
            return [(str(s), str(e)) for s, e in await found.fetchall()]

    async def click(self, run_id: str, gate: str, token: str, incident_id: int | None) -> None:
        """ou_bob approves on the card; the run resumes as after a card click."""
        click = gates.Click(run_id, gate, token, incident_id, "approve", expires=time.time() + 60)
        verdict = await gates.decide(self.db, POLICY, click, BOB, "oc_ops")
        assert verdict.refusal is None
        assert verdict.closed
        assert verdict.gate is not None
        runs = self.incidents if incident_id is not None else self.actions
        assert await runs.resume(
            run_id, verdict.gate.interrupt_id, gate_decision("approve", ["ou_bob"])
        )


def load(dsn: str) -> None:
    """The fixture's rows into the database, gates open for another hour."""
    rows: dict[str, list[dict[str, Any]]] = json.loads(FIXTURE.read_text())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # rows as they were
        for table in TABLES:
            conn.execute(
                f"INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, %s)",
                (json.dumps(rows[table]),),
            )
            if "id" in (rows[table][0] if rows[table] else {}):
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.execute(
            "UPDATE approvals SET expires_at = now() + interval '1 hour' WHERE status = 'pending'"
        )


@pytest.fixture
async def world(migrated_db: Database, fresh_db_url: str) -> AsyncIterator[World]:
    async with open_checkpointer(fresh_db_url) as saver:
        load(fresh_db_url)
        advisor, presenter, desk = Advisor(), Shown(), Desk()
        manager = RunManager(
            GraphDeps(migrated_db, advisor, presenter, POLICY), saver, MemoryCoordination()
        )
        runs = ActionRuns(ActionDeps(migrated_db, desk, POLICY), saver, MemoryCoordination())
        yield World(migrated_db, fresh_db_url, manager, runs, advisor, presenter, desk)
        await manager.drain()
        await runs.drain()


async def test_incident_paused_at_its_proposal_gate_is_approved_and_fixed_once(
    world: World,
) -> None:
    incident_id, run_id = await world.incident("paused-proposal")
    await world.click(run_id, "proposal", gate_token(run_id, "proposal"), incident_id)
    assert await world.one("SELECT status FROM incidents WHERE id = %s", incident_id) == (
        "resolved",
    )
    assert world.advisor.executed == [run_id]
    assert await world.executions(run_id) == [("succeeded", "")]
    assert incident_id in world.presenter.shown  # the card shows it resolved


async def test_incident_killed_while_its_fix_ran_escalates_without_running_it_again(
    world: World,
) -> None:
    incident_id, run_id = await world.incident("killed-execute")
    counts = await world.incidents.recover()
    assert counts["continued"] == 1, counts
    await world.incidents.drain()
    status, reason = await world.one(
        "SELECT status, escalation_reason FROM incidents WHERE id = %s", incident_id
    )
    assert (status, reason) == ("escalated", f"remediation failed: {INTERRUPTED}")
    assert world.advisor.executed == []
    assert await world.executions(run_id) == [("failed", "interrupted")]
    assert incident_id in world.presenter.shown


async def test_action_paused_at_its_gate_is_approved_and_run_once(world: World) -> None:
    action = await world.action("paused-gate")
    run_id = str(action.run_id)
    await world.click(run_id, GATE, run_id, None)
    after = await actions.get(world.db, action.id)
    assert after is not None
    assert after.status == "succeeded"
    assert world.desk.executed == [action.id]
    assert await world.executions(run_id) == [("succeeded", "")]
    assert action.id in world.desk.shown  # the card shows it done


async def test_action_killed_while_its_plugin_ran_fails_as_interrupted_never_run_again(
    world: World,
) -> None:
    action = await world.action("killed-run")
    run_id = str(action.run_id)
    assert await world.actions.reclaim() >= 1
    await world.actions.drain()
    after = await actions.get(world.db, action.id)
    assert after is not None
    assert after.status == "failed"
    assert after.summary == INTERRUPTED
    assert (after.result or {}).get("interrupted") is True
    assert world.desk.executed == []
    assert await world.executions(run_id) == [("failed", "interrupted")]
    assert action.id in world.desk.shown


def test_the_fixture_holds_runs_of_the_earlier_graphs() -> None:
    """The checkpoints are the earlier version's: paused at its node names."""
    rows = json.loads(FIXTURE.read_text())
    written = {w["task_path"] for w in rows["checkpoint_writes"]}
    assert "~__pregel_pull, await_proposal_approval" in written
    assert "~__pregel_pull, await_gate" in written
    assert {w["checkpoint_ns"] for w in rows["checkpoint_writes"]} == {""}  # no subgraph
