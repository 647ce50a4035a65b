"""The elected scheduler against the real Postgres and the real Redis: two schedulers fire each
run exactly once, a dead leader is replaced within the lease time, and fires missed while no
scheduler ran are run once late (or skipped) and reported."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from bot.scheduling.leader import SchedulerService
from storage.coordination import Lease, open_coordination
from storage.database import Database
from storage.models import Schedule, ScheduleRun
from tests.support.wait import wait_until


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


def fires_of(recorder: Recorder, schedule_id: int) -> list[datetime]:
    return [fire for _, sid, fire, _ in recorder.runs if sid == schedule_id]


def record_acquires(service: SchedulerService) -> list[Lease | None]:
    """What each of the service's attempts at the leader lease got (None: somebody held it)."""
    got: list[Lease | None] = []
    acquire = service.coordination.acquire

    async def recorded(name: str, ttl: float) -> Lease | None:
        lease = await acquire(name, ttl)
        got.append(lease)
        return lease

    service.coordination.acquire = recorded  # type: ignore[method-assign]
    return got


def count_syncs(service: SchedulerService) -> list[int]:
    """How often the leader has looked at the schedules table, as `[count]`. It looks once when
    it takes over, catches up missed fires, then looks every `sync_every`: each look after the
    first is a step of its loop, proof that the take-over is behind it."""
    syncs = [0]
    sync = service._sync

    async def counted() -> None:
        await sync()
        syncs[0] += 1

    service._sync = counted  # type: ignore[method-assign]
    return syncs


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
    tries = [record_acquires(first), record_acquires(second)]
    await first.start()
    await second.start()
    await wait_until(
        lambda: len(fires_of(recorder, schedule_id)) >= 3, timeout=20, what="three fires"
    )
    await first.stop()
    await second.stop()
    fires = fires_of(recorder, schedule_id)
    assert len(fires) >= 3
    assert all(tries)  # both replicas asked for the lease ...
    assert sum(lease is not None for got in tries for lease in got) == 1  # ... one got it
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
    asked = record_acquires(standby)
    await leader.start()
    await wait_until(lambda: leader.is_leader, what="the first replica leading")
    await standby.start()
    # the standby asks again every third of the lease time; the renewed lease is never free
    await wait_until(lambda: len(asked) >= 2, what="the standby asking twice for the lease")
    assert not any(asked)
    assert leader.is_leader
    assert not standby.is_leader
    # the leader dies without a word: its task stops, its lease is left to expire
    assert leader._task is not None
    leader._task.cancel()
    leader._stop_scheduler()
    await wait_until(
        lambda: standby.is_leader,
        timeout=3.0 + 3.0,  # the lease runs out, then the standby's next ask gets it
        what="the standby taking over within the lease time",
    )
    await wait_until(
        lambda: any(who == "b" for who, *_ in recorder.runs), what="a fire by the new leader"
    )
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
    syncs = count_syncs(service)
    await service.start()
    await wait_until(lambda: syncs[0] >= 3, what="the leader syncing twice after its catch-up")
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
    syncs = count_syncs(service)
    await service.start()
    await wait_until(lambda: syncs[0] >= 3, what="the leader syncing twice after its catch-up")
    await service.stop()
    assert [r for r in recorder.runs if r[3]] == []
    [(_, count, ran_late)] = recorder.missed
    assert ran_late is False
    assert count >= 5
