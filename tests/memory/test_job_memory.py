"""Job memory on the real Postgres (pgvector): runs are kept per job up to a bound, and recalled
by the job or by a target another job shares, failures only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from storage import schedules
from storage.database import Database
from storage.models import Schedule, ScheduleRun
from workflows.memory.embedding import HashingEmbedder
from workflows.memory.jobs import JobMemory, targets_of

T0 = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)


async def job(db: Database, task: str) -> Schedule:
    return await schedules.create(
        db,
        chat_id="oc_ops",
        created_by="ou_alice",
        source_text=task,
        task=task,
        timezone="UTC",
        kind="once",
        spec={},
        cron=None,
        run_at=None,
        action={},
        next_run_at=None,
    )


async def fired(db: Database, row: Schedule, when: datetime, ok: bool) -> ScheduleRun:
    run = await schedules.claim_run(db, row.id, when, replica="test")
    assert run is not None
    await schedules.finish_run(db, run.id, ok=ok, output="", error=None if ok else "refused")
    return run


async def test_a_job_keeps_its_newest_runs_and_recalls_failures_by_job_or_target(
    migrated_db: Database,
) -> None:
    memory = JobMemory(migrated_db, HashingEmbedder(), keep=3)
    cpu = await job(migrated_db, "check the CPU of db-2")
    for n in range(5):
        run = await fired(migrated_db, cpu, T0 + timedelta(hours=n), ok=n == 4)
        await memory.remember(
            cpu,
            run,
            ok=n == 4,
            summary="some checks failed" if n < 4 else "all checks passed",
            lines=[f"❌ host_load: load {9 + n} on db-2"] if n < 4 else ["✅ host_load: ok"],
            targets=["db-2"],
        )
    async with migrated_db.engine.connect() as conn:
        kept = (
            await conn.execute(
                text("SELECT source_id FROM knowledge WHERE kind = 'job_run' ORDER BY id")
            )
        ).all()
    assert [row[0] for row in kept] == ["1:3", "1:4", "1:5"]  # the 3 newest of 5

    history = await memory.before(cpu, ["db-2"])
    assert history.streak == 0  # the last run succeeded
    assert [p.ok for p in history.trend] == [False, False, False, False, True]
    # failures only (the forgotten ones are gone)
    assert {p.text for p in history.seen} == {
        "host_load: load 11 on db-2",
        "host_load: load 12 on db-2",
    }

    other = await job(migrated_db, "disk of db-2")
    shared = await memory.before(other, ["db-2"])
    assert {p.schedule_id for p in shared.seen} == {cpu.id}  # by the target they share
    unrelated = await memory.before(other, ["web-1"])
    assert unrelated.seen == ()


def test_targets_come_from_parameters_urls_and_host_names_in_the_task() -> None:
    action = {
        "type": "checks",
        "steps": [
            {"plugin": "http_check", "params": {"url": "https://shop.example.com/health"}},
            {"plugin": "tcp_check", "params": {"host": "10.0.0.5", "port": 5432}},
        ],
    }
    assert targets_of(action, "每天检查 db-2 和 Web-01 的状态") == [
        "shop.example.com",
        "10.0.0.5",
        "db-2",
        "web-01",
    ]
