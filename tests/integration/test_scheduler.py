"""The elected scheduler against the real Postgres and the real Redis: two schedulers fire each
run exactly once, a dead leader is replaced within the lease time, and fires missed while no
scheduler ran are run once late (or skipped) and reported."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from bot.scheduling.leader import SchedulerService
from storage.coordination import open_coordination
from storage.database import Database
from storage.models import Schedule, ScheduleRun


async def _schedule(db: Database, *, confirmed_ago: timedelta = timedelta(0)) -> int:
    async with db.session() as session:
        row = Schedule(
            chat_id="oc_ops",
            created_by="ou_alice",
            source_text="every second",
            task="tick",
            timezone="UTC",
            kind="interval",
            spec={},
            status="active",
            confirmed_at=datetime.now(UTC) - confirmed_ago,
        )
        session.add(row)
        await session.flush()
        return int(row.id)


class Recorder:
    def __init__(self) -> None:
        self.runs: list[tuple[str, int, datetime, bool]] = []
        self.missed: list[tuple[int, int, bool]] = []

    def run_job(self, who: str) -> Any:
        async def run(row: Schedule, run: ScheduleRun, late: bool) -> None:
            self.runs.append((who, row.id, run.fire_time, late))

        return run

    async def report(self, row: Schedule, count: int, ran_late: bool) -> None:
        self.missed.append((row.id, count, ran_late))


def every(seconds: float, start: datetime | None = None) -> Any:
    def trigger_of(row: Schedule) -> IntervalTrigger:
        return IntervalTrigger(seconds=seconds, start_date=start or row.confirmed_at, timezone=UTC)

    return trigger_of


async def _service(
    db: Database, redis_url: str, prefix: str, who: str, recorder: Recorder, **options: Any
) -> SchedulerService:
    coordination = await open_coordination(redis_url, prefix)
    return SchedulerService(
        db,
        coordination,
        options.pop("trigger_of", every(1)),
        recorder.run_job(who),
        recorder.report,
        replica=who,
        lease_ttl=options.pop("lease_ttl", 3.0),
        sync_every=0.2,
        misfire_grace=options.pop("misfire_grace", 2.0),
        **options,
    )


async def test_two_schedulers_fire_each_run_once(migrated_db: Database, redis_url: str) -> None:
    schedule_id = await _schedule(migrated_db)
    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    first = await _service(migrated_db, redis_url, prefix, "a", recorder)
    second = await _service(migrated_db, redis_url, prefix, "b", recorder)
    await first.start()
    await second.start()
    await asyncio.sleep(5.5)
    await first.stop()
    await second.stop()
    fires = [fire for _, sid, fire, _ in recorder.runs if sid == schedule_id]
    assert len(fires) >= 3
    assert len(fires) == len(set(fires))  # never the same fire twice
    assert len({who for who, *_ in recorder.runs}) == 1  # one leader did it all
    async with migrated_db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM schedule_runs"))).scalar_one()
    assert rows == len(fires)


async def test_a_dead_leader_is_replaced_within_the_lease(
    migrated_db: Database, redis_url: str
) -> None:
    await _schedule(migrated_db)
    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    leader = await _service(migrated_db, redis_url, prefix, "a", recorder)
    standby = await _service(migrated_db, redis_url, prefix, "b", recorder)
    await leader.start()
    await asyncio.sleep(1.0)
    await standby.start()
    await asyncio.sleep(1.5)
    assert leader.is_leader
    assert not standby.is_leader
    # the leader dies without a word: its task stops, its lease is left to expire
    assert leader._task is not None
    leader._task.cancel()
    leader._stop_scheduler()
    died = asyncio.get_running_loop().time()
    while not standby.is_leader:
        await asyncio.sleep(0.1)
        assert asyncio.get_running_loop().time() - died < 3.0 + 3.0, "no takeover in time"
    await asyncio.sleep(2.5)
    await standby.stop()
    assert any(who == "b" for who, *_ in recorder.runs)
    fires = [fire for *_, fire, _ in recorder.runs]
    assert len(fires) == len(set(fires))


async def test_missed_fires_run_once_late_and_are_reported(
    migrated_db: Database, redis_url: str
) -> None:
    schedule_id = await _schedule(migrated_db, confirmed_ago=timedelta(seconds=30))
    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    service = await _service(
        migrated_db, redis_url, prefix, "a", recorder, trigger_of=every(5), misfire_grace=1.0
    )
    await service.start()
    await asyncio.sleep(1.5)
    await service.stop()
    late = [r for r in recorder.runs if r[3]]
    assert len(late) == 1  # only the latest missed fire, once, marked late
    [(reported, count, ran_late)] = recorder.missed
    assert (reported, ran_late) == (schedule_id, True)
    assert count >= 5
    async with migrated_db.engine.connect() as conn:
        statuses = (
            await conn.execute(
                text("SELECT status, count(*) FROM schedule_runs GROUP BY status ORDER BY 1")
            )
        ).all()
    assert dict(statuses)["missed"] == count - 1


async def test_missed_fires_can_be_skipped(migrated_db: Database, redis_url: str) -> None:
    await _schedule(migrated_db, confirmed_ago=timedelta(seconds=30))
    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    service = await _service(
        migrated_db,
        redis_url,
        prefix,
        "a",
        recorder,
        trigger_of=every(5),
        misfire_grace=1.0,
        missed="skip",
    )
    await service.start()
    await asyncio.sleep(1.5)
    await service.stop()
    assert [r for r in recorder.runs if r[3]] == []
    [(_, count, ran_late)] = recorder.missed
    assert ran_late is False
    assert count >= 5
