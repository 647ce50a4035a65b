"""Retention on real Postgres: what a cleanup pass deletes, what it keeps, and `larkops gc`.

Rows are seeded with old timestamps; checkpoints come from real runs of the incident graph on
the real `AsyncPostgresSaver`, aged by moving their incident's last change back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from bot.config import ConfigError, load_settings
from bot.janitor import LEASE, Janitor
from storage.coordination import Lease, MemoryCoordination
from storage.database import Database
from storage.retention import RetentionConfig
from tests.integration.test_incident_graph import Harness, RecordingPresenter, ScriptedAdvisor
from tests.support.wait import wait_until
from workflows.checkpoint import open_checkpointer
from workflows.cleanup import CHECKPOINT_TABLES, clean
from workflows.incident_graph import GatePolicy, GraphDeps
from workflows.runs import RunManager

DEFAULTS = RetentionConfig(batch=100)  # the default periods, small batches


@pytest.fixture
async def harness(migrated_db: Database, fresh_db_url: str) -> AsyncIterator[Harness]:
    advisor, presenter = ScriptedAdvisor(), RecordingPresenter()
    async with open_checkpointer(fresh_db_url) as saver:
        deps = GraphDeps(migrated_db, advisor, presenter, GatePolicy(approvers=("ou_bob",)))
        manager = RunManager(deps, saver, MemoryCoordination())
        yield Harness(migrated_db, manager, advisor, presenter, saver)
        await manager.drain()


async def sql(db: Database, statement: str, **params: Any) -> list[Any]:
    async with db.session() as session:
        result = await session.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def ids(db: Database, table: str, where: str = "true") -> set[Any]:
    return {row[0] for row in await sql(db, f"SELECT id FROM {table} WHERE {where}")}


async def checkpoint_rows(db: Database, thread: str | None = None) -> dict[str, int]:
    """Rows per checkpoint table, of one thread or of all."""
    found = {}
    for table in CHECKPOINT_TABLES:
        where = "true" if thread is None else "thread_id = :t"
        rows = await sql(db, f"SELECT count(*) FROM {table} WHERE {where}", t=thread)
        found[table] = rows[0][0]
    return found


async def age(db: Database, incident_id: int, by: timedelta, status: str | None = None) -> None:
    """Move the incident's last change back (and optionally close it without its run)."""
    await sql(
        db,
        "UPDATE incidents SET updated_at = now() - CAST(:age AS interval), "
        "status = coalesce(:status, status) WHERE id = :i",
        age=by,
        status=status,
        i=incident_id,
    )


async def finished(h: Harness) -> tuple[int, str]:
    incident_id, run_id = await h.incident()
    await h.manager.run_now(incident_id, run_id)
    assert await h.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await h.click(run_id, "proposal", "ou_bob", "approve")
    assert await h.status(incident_id) == ("resolved", None)
    return incident_id, run_id


async def paused(h: Harness) -> tuple[int, str]:
    incident_id, run_id = await h.incident()
    await h.manager.run_now(incident_id, run_id)
    assert await h.status(incident_id) == ("awaiting_approval", None)
    return incident_id, run_id


async def test_checkpoints_of_finished_runs_go_and_of_active_or_paused_runs_stay(
    harness: Harness,
) -> None:
    db = harness.db
    old_done, old_run = await finished(harness)
    await age(db, old_done, timedelta(days=8))
    young_done, young_run = await finished(harness)
    await age(db, young_done, timedelta(hours=1))
    _, just_run = await finished(harness)  # its last node may still be writing
    waiting, waiting_run = await paused(harness)
    await age(db, waiting, timedelta(days=30))
    # closed by hand, yet its run is still paused at the gate: by the approval row ...
    gate_open, gate_open_run = await paused(harness)
    await age(db, gate_open, timedelta(days=30), "resolved")
    # ... and, with the approval closed, by the checkpoint itself
    cut_off, cut_off_run = await paused(harness)
    await age(db, cut_off, timedelta(days=30), "escalated")
    await sql(db, "UPDATE approvals SET status = 'cancelled' WHERE incident_id = :i", i=cut_off)

    untouched = [just_run, waiting_run, gate_open_run, cut_off_run]
    before = {run: await checkpoint_rows(db, run) for run in [old_run, young_run, *untouched]}
    assert before[old_run]["checkpoints"] > 10
    assert before[young_run]["checkpoint_writes"] > 0
    totals = await checkpoint_rows(db)

    dry = await clean(db, harness.saver, DEFAULTS, dry_run=True)
    assert await checkpoint_rows(db) == totals
    assert (dry.runs_deleted, dry.runs_pruned) == (1, 1)

    report = await clean(db, harness.saver, DEFAULTS)
    assert (report.runs_deleted, report.runs_pruned) == (1, 1)
    after = await checkpoint_rows(db)
    gone = {table: totals[table] - after[table] for table in CHECKPOINT_TABLES}
    assert gone == {table: report.tables[table] for table in CHECKPOINT_TABLES}
    assert {t: dry.tables[t] for t in CHECKPOINT_TABLES} == gone  # the dry run counted right
    assert await checkpoint_rows(db, old_run) == dict.fromkeys(CHECKPOINT_TABLES, 0)
    pruned = await checkpoint_rows(db, young_run)
    assert pruned["checkpoints"] == 1
    assert pruned["checkpoint_writes"] == 0
    state = await harness.manager.graph.aget_state(harness.manager.config(young_run))
    assert state.values["outcome"] == "resolved"  # the final state is still there
    assert not state.next
    for run in untouched:
        assert await checkpoint_rows(db, run) == before[run], run

    # the paused runs still work: the waiting one goes on to its next gate
    assert await harness.click(waiting_run, "diagnosis", "ou_bob", "approve")
    snapshot = await harness.manager.graph.aget_state(harness.manager.config(waiting_run))
    assert snapshot.next == ("remediate",)  # paused at the proposal gate of its remediation
    assert [p.value["gate"] for t in snapshot.tasks for p in t.interrupts] == ["proposal"]

    again = await clean(db, harness.saver, DEFAULTS)
    assert (again.runs_deleted, again.runs_pruned, again.total) == (0, 0, 0)


async def seed_rows(db: Database) -> dict[str, Any]:
    """Rows on both sides of every period; returns the ids that must stay."""
    made: dict[str, Any] = {}

    async def one(statement: str, **params: Any) -> Any:
        return (await sql(db, statement + " RETURNING id", **params))[0][0]

    async def inbound(status: str, handled: timedelta | None, created: int = 0) -> Any:
        return await one(
            "INSERT INTO inbound_events (event_id, event_type, payload, status, handled_at, "
            "created_at) VALUES (gen_random_uuid()::text, 'im.message.receive_v1', '{}', "
            ":status, now() - CAST(:handled AS interval), now() - CAST(:created AS interval))",
            status=status,
            handled=handled,
            created=timedelta(days=created),
        )

    for status in ("done", "ignored", "failed"):
        await inbound(status, timedelta(days=20))
    await inbound("done", None, 20)  # never stamped: its arrival counts
    await sql(
        db,
        "INSERT INTO inbound_events (event_id, event_type, payload, status, handled_at) "
        "SELECT 'bulk-' || n, 'card.action.trigger', '{}', 'done', now() - interval '30 days' "
        "FROM generate_series(1, 250) AS n",
    )
    made["inbound_events"] = {
        await inbound("pending", None, 30),
        await inbound("processing", None, 30),
        await inbound("done", timedelta(days=1), 30),
    }

    async def incident(status: str, changed: timedelta) -> Any:
        return await one(
            "INSERT INTO incidents (fingerprint, title, status, created_at, updated_at) "
            "VALUES (gen_random_uuid()::text, 'DiskFull', :status, now() - interval '500 days', "
            "now() - CAST(:changed AS interval))",
            status=status,
            changed=changed,
        )

    closed_long_ago = await incident("resolved", timedelta(days=400))
    suppressed_long_ago = await incident("suppressed", timedelta(days=400))
    still_open = await incident("open", timedelta(days=400))
    closed_lately = await incident("resolved", timedelta(days=10))
    escalated_long_ago = await incident("escalated", timedelta(days=400))  # a person must act

    async def event(incident_id: Any, created: timedelta) -> Any:
        return await one(
            "INSERT INTO incident_events (incident_id, kind, created_at) "
            "VALUES (:i, 'workflow.started', now() - CAST(:created AS interval))",
            i=incident_id,
            created=created,
        )

    for _ in range(2):
        await event(closed_long_ago, timedelta(days=450))
    await event(suppressed_long_ago, timedelta(days=450))
    await event(None, timedelta(days=400))
    made["incident_events"] = {
        await event(still_open, timedelta(days=450)),
        await event(closed_lately, timedelta(days=450)),  # its timeline stays whole until it ages
        await event(escalated_long_ago, timedelta(days=450)),  # not over: its timeline stays
        await event(None, timedelta(days=10)),
    }

    async def turn(incident_id: Any, created: timedelta) -> Any:
        return await one(
            "INSERT INTO llm_turns (incident_id, purpose, provider, model, created_at) "
            "VALUES (:i, 'diagnose', 'openai', 'm', now() - CAST(:created AS interval))",
            i=incident_id,
            created=created,
        )

    await turn(None, timedelta(days=100))
    await turn(closed_lately, timedelta(days=100))
    made["llm_turns"] = {
        await turn(still_open, timedelta(days=100)),
        await turn(None, timedelta(days=10)),
    }

    async def schedule() -> Any:
        return await one(
            "INSERT INTO schedules (chat_id, created_by, source_text, task, timezone, kind) "
            "VALUES ('oc_1', 'ou_a', 'daily', 'check', 'UTC', 'cron')"
        )

    async def runs(schedule_id: Any, days_ago: list[int], status: str = "succeeded") -> list[Any]:
        return [
            await one(
                "INSERT INTO schedule_runs (schedule_id, fire_time, status) "
                "VALUES (:s, now() - make_interval(days => :d), :status)",
                s=schedule_id,
                d=d,
                status=status,
            )
            for d in days_ago
        ]

    busy, running, sparse, recent = [await schedule() for _ in range(4)]
    busy_runs = await runs(busy, list(range(214, 199, -1)))  # 15 old runs: the newest 10 stay
    stuck = await runs(running, [300], "running")  # the oldest, but never finished
    running_runs = await runs(running, list(range(211, 200, -1)))  # 11 more old runs
    made["schedule_runs"] = {
        *busy_runs[5:],
        *stuck,
        *running_runs[1:],
        *await runs(sparse, [400, 300, 200]),  # fewer runs than are kept
        *await runs(recent, list(range(12, 0, -1))),  # inside the period
    }

    async def conversation(updated: timedelta, answering: str | None = None) -> Any:
        talk = await one(
            "INSERT INTO conversations (chat_id, root_message_id, started_by, updated_at, "
            "answering_message_id) VALUES ('oc_1', gen_random_uuid()::text, 'ou_a', "
            "now() - CAST(:updated AS interval), :answering)",
            updated=updated,
            answering=answering,
        )
        for seq in range(3):
            await sql(
                db,
                "INSERT INTO conversation_messages (conversation_id, seq, role, content) "
                "VALUES (:c, :seq, 'user', 'hello')",
                c=talk,
                seq=seq,
            )
        return talk

    await conversation(timedelta(days=40))
    made["conversations"] = {
        await conversation(timedelta(days=40), "om_streaming"),
        await conversation(timedelta(days=2)),
    }
    return made


TABLES = ["inbound_events", "incident_events", "llm_turns", "schedule_runs", "conversations"]


async def test_rows_past_their_period_go_and_everything_else_stays(migrated_db: Database) -> None:
    db = migrated_db
    kept = await seed_rows(db)
    counts = {table: len(await ids(db, table)) for table in [*TABLES, "conversation_messages"]}

    forever = RetentionConfig(
        inbound_days=None,
        audit_days=None,
        llm_turns_days=None,
        schedule_runs_days=None,
        conversations_days=None,
    )
    nothing = await clean(db, None, forever)
    assert (nothing.steps, nothing.total) == ([], 0)

    expected = {
        "inbound_events": 254,
        "triaged_deliveries": 0,
        "incident_events": 4,
        "llm_turns": 2,
        "schedule_runs": 6,
        "conversations": 1,
        "conversation_messages": 3,
    }
    dry = await clean(db, None, DEFAULTS, dry_run=True)
    assert dry.tables == expected
    assert {t: len(await ids(db, t)) for t in counts} == counts  # a dry run deletes nothing

    report = await clean(db, None, DEFAULTS)  # batches of 100
    assert report.tables == expected
    assert [step.name for step in report.steps] == [
        "inbound_events",
        "triaged_deliveries",
        "audit",
        "llm_turns",
        "schedule_runs",
        "conversations",
    ]
    for table in TABLES:
        assert await ids(db, table) == kept[table], table
    assert len(await ids(db, "conversation_messages")) == 6
    messages = await sql(db, "SELECT DISTINCT conversation_id FROM conversation_messages")
    assert {row[0] for row in messages} == kept["conversations"]
    assert (await clean(db, None, DEFAULTS)).total == 0


async def test_the_retention_section_is_read_from_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "larkops.yaml"
    config.write_text("retention:\n  audit_days: null\n  inbound_days: 3\n", encoding="utf-8")
    monkeypatch.setenv("LARKOPS_CONFIG", str(config))
    retention = load_settings().retention
    assert (retention.audit_days, retention.inbound_days, retention.llm_turns_days) == (None, 3, 90)
    config.write_text("retention:\n  inbound_days: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"retention\.inbound_days"):
        load_settings()


async def test_one_replica_runs_a_pass_per_interval_and_counts_it(migrated_db: Database) -> None:
    await seed_rows(migrated_db)
    shared = MemoryCoordination()
    here = Janitor(DEFAULTS, migrated_db, None, shared)
    there = Janitor(DEFAULTS, migrated_db, None, shared)
    sample = "larkops_gc_deleted_total"
    before = REGISTRY.get_sample_value(sample, {"table": "inbound_events"}) or 0.0
    report = await here.run_once()
    assert report is not None
    assert report.tables["inbound_events"] == 254
    assert await there.run_once() is None  # the lease lasts the interval: no second pass
    assert await here.run_once() is None
    after = REGISTRY.get_sample_value(sample, {"table": "inbound_events"})
    assert after == before + 254
    assert (REGISTRY.get_sample_value("larkops_gc_last_run_timestamp_seconds") or 0) > 0


class Looks(MemoryCoordination):
    """Memory coordination that counts a janitor's looks (its tries at the lease) and keeps
    the leases it grants."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0
        self.granted: list[Lease] = []

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        self.looks += 1
        lease = await super().acquire(name, ttl)
        if lease is not None:
            self.granted.append(lease)
        return lease


async def test_the_scheduled_cleanup_runs_in_the_background_until_stopped(
    migrated_db: Database,
) -> None:
    await seed_rows(migrated_db)
    coordination = Looks()
    janitor = Janitor(DEFAULTS, migrated_db, None, coordination, first_delay=0, poll=0.05)

    async def cleaned() -> bool:
        return len(await ids(migrated_db, "inbound_events")) == 3

    janitor.start()
    try:
        await wait_until(cleaned, timeout=30, what="the background pass")
        # it goes on looking, and finds the lease taken: one pass per interval
        looked = coordination.looks
        await wait_until(lambda: coordination.looks >= looked + 2, what="two more looks")
    finally:
        await janitor.stop()
    assert await ids(migrated_db, "conversations") != set()  # the pass ran to its end
    assert len(coordination.granted) == 1
    # free the lease: a janitor still running would clean this row at its next look
    assert await coordination.release(coordination.granted[0]) is True
    await sql(
        migrated_db,
        "INSERT INTO inbound_events (event_id, event_type, payload, status, handled_at) "
        "VALUES ('late', 'x', '{}', 'done', now() - interval '30 days')",
    )
    stopped_at = coordination.looks
    # a witness janitor with the same poll (its lease held here, so it never cleans): once it
    # has looked three times, the stopped one would have too
    witness_coordination = Looks()
    assert await witness_coordination.acquire(LEASE, 60) is not None
    witness = Janitor(DEFAULTS, migrated_db, None, witness_coordination, first_delay=0, poll=0.05)
    witness.start()
    try:
        await wait_until(lambda: witness_coordination.looks >= 1 + 3, what="three witness looks")
    finally:
        await witness.stop()
    assert coordination.looks == stopped_at  # stopped: nothing runs any more
    assert len(await ids(migrated_db, "inbound_events")) == 4


def run_cli(*args: str, database_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`larkops …` in a fresh interpreter, reporting on stderr whether the Lark SDK was loaded."""
    program = (
        "import sys\n"
        "from bot.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "if 'lark_oapi' in sys.modules:\n"
        "    sys.stderr.write('lark_oapi was imported\\n')\n"
        "sys.exit(code)\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "DATABASE_URL": database_url,
        "LARKOPS_HOME": str(home / "larkops"),
        "LARKOPS_LOG_LEVEL": "warning",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_larkops_gc_counts_then_deletes(
    migrated_db: Database, fresh_db_url: str, tmp_path: Path
) -> None:
    await seed_rows(migrated_db)
    dry = run_cli("gc", "--dry-run", database_url=fresh_db_url, home=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "lark_oapi" not in dry.stderr
    lines = {line.split()[0]: line.split()[1:] for line in dry.stdout.splitlines() if line}
    assert lines["table"][:2] == ["would", "delete"]
    assert lines["inbound_events"][0] == "254"
    assert lines["conversation_messages"] == ["3"]
    assert len(await ids(migrated_db, "inbound_events")) == 257

    done = run_cli("gc", "--json", database_url=fresh_db_url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "lark_oapi" not in done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is False
    assert report["tables"] == {
        "checkpoints": 0,
        "checkpoint_blobs": 0,
        "checkpoint_writes": 0,
        "inbound_events": 254,
        "triaged_deliveries": 0,
        "incident_events": 4,
        "llm_turns": 2,
        "schedule_runs": 6,
        "conversations": 1,
        "conversation_messages": 3,
    }
    assert report["runs"] == {"deleted": 0, "pruned": 0}
    assert report["seconds"] >= 0
    assert len(await ids(migrated_db, "inbound_events")) == 3
