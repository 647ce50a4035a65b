"""The elected scheduler against the real Postgres and the real Redis: two schedulers fire each
run exactly once, a dead leader is replaced within the lease time, fires missed while no
scheduler ran are run once late (or skipped) and reported, and a run whose replica died midway
is run again once by the new leader, or recorded interrupted and the chat told."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from bot.scheduling import recovery
from bot.scheduling.leader import LEASE, SchedulerService
from storage import schedules
from storage.coordination import CoordinationError, Lease, open_coordination
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

    def run_job(self, who: str, db: Database) -> Any:
        async def run(row: Schedule, run: ScheduleRun, late: bool) -> None:
            self.runs.append((who, row.id, run.fire_time, late))
            # as the job runner does: a run left `running` is one whose replica died, and the
            # next leader runs it again (a dead leader's finished fires were so run twice)
            await schedules.finish_run(db, run.id, ok=True, output=who)

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
    """What each of the service's attempts at the leader lease got (None: somebody held it);
    the leases of its runs are not counted."""
    got: list[Lease | None] = []
    acquire = service.coordination.acquire

    async def recorded(name: str, ttl: float) -> Lease | None:
        lease = await acquire(name, ttl)
        if name == LEASE:
            got.append(lease)
        return lease

    service.coordination.acquire = recorded  # type: ignore[method-assign]
    return got


def count_calls(service: SchedulerService, name: str) -> list[int]:
    """How often the service has run its step `name`, as `[count]`: `_sync` (the leader looks
    at the schedules table once when it takes over, catches up missed fires, then looks every
    `sync_every`: each look after the first is a step of its loop, proof that the take-over is
    behind it) or `_recover` (a look for runs of dead replicas)."""
    calls = [0]
    step = getattr(service, name)

    async def counted() -> None:
        await step()
        calls[0] += 1

    setattr(service, name, counted)
    return calls


async def _service(
    db: Database, redis_url: str, prefix: str, who: str, recorder: Recorder, **options: Any
) -> SchedulerService:
    coordination = await open_coordination(redis_url, prefix)
    return SchedulerService(
        db,
        coordination,
        options.pop("trigger_of", every(1)),
        recorder.run_job(who, db),
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
    syncs = count_calls(service, "_sync")
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
    syncs = count_calls(service, "_sync")
    await service.start()
    await wait_until(lambda: syncs[0] >= 3, what="the leader syncing twice after its catch-up")
    await service.stop()
    assert [r for r in recorder.runs if r[3]] == []
    [(_, count, ran_late)] = recorder.missed
    assert ran_late is False
    assert count >= 5


def cut_off(service: SchedulerService) -> None:
    """The replica dies as far as the others can tell: it renews no lease any more (its job,
    hung, never writes again)."""

    async def gone(*_: Any) -> Any:
        raise CoordinationError("replica is dead")

    for name in ("acquire", "renew", "release"):
        setattr(service.coordination, name, gone)
    assert service._task is not None
    service._task.cancel()
    service._stop_scheduler()


async def _runs(db: Database, schedule_id: int) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT fire_time, status, reruns, replica, error FROM schedule_runs "
                "WHERE schedule_id = :sid ORDER BY id"
            ),
            {"sid": schedule_id},
        )
        return [tuple(row) for row in found.all()]


async def _audited(db: Database, kind: str) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT data FROM incident_events WHERE kind = :kind ORDER BY id"),
            {"kind": kind},
        )
        return [dict(row[0]) for row in found.all()]


async def test_a_run_whose_replica_died_is_run_again_once_by_the_new_leader(
    migrated_db: Database, redis_url: str
) -> None:
    """The leader claims a fire and dies in the middle of its job (the run stays `running`,
    its lease is no longer renewed). The replica that takes over runs it again, late, once:
    the run ends `succeeded`, taken over once, and later looks change nothing."""
    schedule_id = await _schedule(migrated_db)
    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    hung = asyncio.Event()  # the dead replica's job never ends

    def run_job(who: str) -> Any:
        async def run(row: Schedule, run: ScheduleRun, late: bool) -> None:
            recorder.runs.append((who, row.id, run.fire_time, late))
            if who == "a":
                await hung.wait()
            await schedules.finish_run(migrated_db, run.id, ok=True, output=who)

        return run

    once = every(3600, datetime.now(UTC) + timedelta(seconds=1))  # one fire, a second from now
    first = await _service(migrated_db, redis_url, prefix, "a", recorder, trigger_of=once)
    second = await _service(migrated_db, redis_url, prefix, "b", recorder, trigger_of=once)
    first.run_job, second.run_job = run_job("a"), run_job("b")
    looks = count_calls(second, "_recover")
    await first.start()
    await wait_until(lambda: first.is_leader, what="the first replica leading")
    await second.start()
    await wait_until(lambda: recorder.runs, what="the first replica running the fire")
    [(fire_time, status, reruns, replica, _)] = await _runs(migrated_db, schedule_id)
    assert (status, reruns, replica) == (
        "running",
        0,
        f"a#fence{first.lease and first.lease.fence}",
    )
    cut_off(first)
    await wait_until(
        lambda: any(who == "b" for who, *_ in recorder.runs),
        timeout=20,
        what="the new leader running the dead replica's run again",
    )
    await wait_until(lambda: _is_done(migrated_db, schedule_id), what="the rerun to finish")
    seen = looks[0]
    await wait_until(lambda: looks[0] >= seen + 2, what="two more looks for dead replicas' runs")
    await second.stop()
    hung.set()
    await asyncio.wait(list(first._tasks), timeout=10)
    done = await _runs(migrated_db, schedule_id)
    assert len(done) == 1, done
    [(again, status, reruns, replica, _)] = done
    assert (again, status, reruns) == (fire_time, "succeeded", 1)
    assert replica.startswith("b#fence"), replica
    assert [(who, late) for who, _, fire, late in recorder.runs if fire == fire_time] == [
        ("a", False),
        ("b", True),
    ]
    [audit] = await _audited(migrated_db, "schedule.run_rerun")
    assert audit["schedule_id"] == schedule_id
    assert audit["dead_replica"].startswith("a#fence")
    assert await _audited(migrated_db, "schedule.run_interrupted") == []


async def _is_done(db: Database, schedule_id: int) -> bool:
    return all(status != "running" for _, status, *_ in await _runs(db, schedule_id))


async def _stranded(
    db: Database, schedule_id: int, fire_time: datetime, *, reruns: int, ago: timedelta
) -> int:
    """A run left `running` by replica `dead`, claimed `ago`."""
    async with db.session() as session:
        row = ScheduleRun(
            schedule_id=schedule_id,
            fire_time=fire_time,
            status="running",
            replica="dead#fence1",
            reruns=reruns,
            created_at=datetime.now(UTC) - ago,
        )
        session.add(row)
        await session.flush()
        return int(row.id)


async def test_runs_of_dead_replicas_that_cannot_run_again_are_interrupted_and_told(
    migrated_db: Database, redis_url: str
) -> None:
    """Across two replicas, the runs left `running` by a dead replica that must not run again
    (taken over once already; claimed more than 50 minutes ago, when Lark no longer drops a
    repeated card) are recorded `interrupted` once, the chat told once each, with the reason;
    a run whose replica still renews its lease is left alone."""
    schedule_id = await _schedule(migrated_db)
    start = datetime.now(UTC) - timedelta(hours=3)
    rerun_already = await _stranded(
        migrated_db, schedule_id, start, reruns=1, ago=timedelta(minutes=5)
    )
    too_old = await _stranded(
        migrated_db, schedule_id, start + timedelta(hours=1), reruns=0, ago=timedelta(hours=2)
    )
    alive = await _stranded(
        migrated_db, schedule_id, start + timedelta(hours=2), reruns=0, ago=timedelta(minutes=5)
    )
    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    told: list[tuple[str, int, str]] = []

    def tell(who: str) -> Any:
        async def report(row: Schedule, run: ScheduleRun, reason: str) -> None:
            told.append((who, run.id, reason))

        return report

    later = every(3600, datetime.now(UTC) + timedelta(hours=1))  # no fire during the test
    services = [
        await _service(
            migrated_db,
            redis_url,
            prefix,
            who,
            recorder,
            trigger_of=later,
            report_interrupted=tell(who),
            missed="skip",
        )
        for who in ("a", "b")
    ]
    holder = await open_coordination(redis_url, prefix)
    kept = await holder.acquire(recovery.lease_name(alive), 60)  # its replica lives
    assert kept is not None
    looks = [count_calls(service, "_recover") for service in services]
    for service in services:
        await service.start()
    await wait_until(lambda: len(told) >= 2, what="the chat told of both interrupted runs")
    seen = [n[0] for n in looks]
    await wait_until(
        lambda: any(n[0] >= s + 2 for n, s in zip(looks, seen, strict=True)),
        what="two more looks for dead replicas' runs",
    )
    for service in services:
        await service.stop()
    await holder.release(kept)
    assert sorted((run, reason) for _, run, reason in told) == sorted(
        [(rerun_already, "rerun_once"), (too_old, "too_late")]
    )
    rows = {
        fire: (status, error) for fire, status, _, _, error in await _runs(migrated_db, schedule_id)
    }
    assert rows == {
        start: ("interrupted", "rerun_once"),
        start + timedelta(hours=1): ("interrupted", "too_late"),
        start + timedelta(hours=2): ("running", None),
    }
    assert recorder.runs == []  # nothing was run again
    audits = await _audited(migrated_db, "schedule.run_interrupted")
    assert sorted(a["run_id"] for a in audits) == sorted([rerun_already, too_old])
    assert await _audited(migrated_db, "schedule.run_rerun") == []


async def test_a_leader_stopped_in_the_middle_of_a_recovery_finishes_it_and_frees_the_lease(
    migrated_db: Database, redis_url: str
) -> None:
    """A stop() (a rolling restart) arriving while the new leader tells the chat of a dead
    replica's run it recorded `interrupted` lets it finish: the chat is told (nobody would
    tell it later: the run is no longer `running`), no other step starts, and the leader's
    lease is free at once for the next leader."""
    schedule_id = await _schedule(migrated_db)
    start = datetime.now(UTC) - timedelta(hours=3)
    stranded = await _stranded(migrated_db, schedule_id, start, reruns=1, ago=timedelta(minutes=5))
    telling, go_on = asyncio.Event(), asyncio.Event()
    told: list[tuple[int, str]] = []

    async def tell(row: Schedule, run: ScheduleRun, reason: str) -> None:
        telling.set()
        await go_on.wait()  # the chat answers slowly
        told.append((run.id, reason))

    prefix, recorder = f"t{uuid.uuid4().hex[:8]}:", Recorder()
    later = every(3600, datetime.now(UTC) + timedelta(hours=1))
    service = await _service(
        migrated_db,
        redis_url,
        prefix,
        "a",
        recorder,
        trigger_of=later,
        report_interrupted=tell,
        missed="skip",
    )
    looks = count_calls(service, "_recover")
    await service.start()
    await telling.wait()
    stopping = asyncio.create_task(service.stop())
    await wait_until(lambda: service._stopping, what="the stop under way")
    go_on.set()
    await stopping
    assert told == [(stranded, "rerun_once")]
    assert looks == [1]  # the take-over's look, finished; none after the stop
    other = await open_coordination(redis_url, prefix)
    assert await other.acquire(LEASE, 3.0) is not None  # free, not left to expire
