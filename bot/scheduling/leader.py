"""The scheduler: one elected leader runs APScheduler; every fire happens once, anywhere.

- **Leader**: the replica holding the `scheduler:leader` lease (Redis, or memory for one
  process) runs an APScheduler 3 `AsyncIOScheduler` with an in-memory job store. It renews the
  lease every third of its time to live; if a renewal fails it stops its scheduler at once, and
  another replica takes over within one lease time.
- **Source of truth**: the `schedules` table. The leader loads every active schedule when it
  takes over and then follows changes: every `sync_every` seconds (and at once on `wake()`, which
  the local chat commands call) it reloads the schedules changed since its last look.
- **Once**: APScheduler tells us the scheduled fire time (`EVENT_JOB_SUBMITTED`); the fire is
  claimed by inserting `(schedule_id, fire_time)` into `schedule_runs`, unique, so a fire runs
  once even when two leaders overlap for a moment or a replica restarts. The lease's fencing
  token is recorded with the run.
- **Missed fires** (the bot was down): when a leader takes over it looks, per schedule, at the
  fires between the last recorded run and now. `missed: run_once` (default) runs the latest of
  them once, late, and records the others as `missed`; `missed: skip` records them all as
  `missed`. Either way the chat is told. APScheduler's own short delays are absorbed by
  `coalesce` and a misfire grace time (see `workflows.schedule.compiler`).
- **Dead replicas**: a fire runs under a lease of its own, renewed while it runs. The leader
  looks, when it takes over and then every lease time, for runs still `running` whose lease
  nobody holds (their replica died), and runs each again once or records it `interrupted` and
  tells the chat (`bot.scheduling.recovery`).

Usage::

    service = SchedulerService(db, coordination, triggers, run_job, report_missed, replica="a")
    await service.start(); service.wake(); await service.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from prometheus_client import Counter, Gauge, Histogram

from bot.scheduling import recovery
from bot.scheduling.recovery import Interruption
from storage import schedules
from storage.coordination import Coordination, Lease
from storage.database import Database
from storage.models import Schedule, ScheduleRun
from storage.notices import QUIET, Notices
from storage.tasks import cancel, finish

log = logging.getLogger(__name__)
LEASE = "scheduler:leader"
MAX_MISSED_ROWS = 100
STEP_PATIENCE = 5.0  # seconds stop() lets the leader's step under way take before cancelling it
STOP_PATIENCE = 10.0  # seconds stop() then waits for the cancelled loop to end

LEADER = Gauge("larkops_scheduler_leader", "1 while this replica leads the scheduler")
LATENESS = Histogram(
    "larkops_scheduler_fire_lateness_seconds",
    "From a fire's scheduled time to its run starting (catch-up runs after downtime included)",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0),
)
# succeeded | failed (as the run's row says afterwards) | missed (recorded, not run) |
# interrupted (its replica died, not run again)
SCHEDULE_RUNS = Counter("larkops_schedule_runs_total", "Schedule fires by outcome", ["outcome"])

TriggerOf = Callable[[Schedule], BaseTrigger | None]
RunJob = Callable[[Schedule, ScheduleRun, bool], Awaitable[None]]
ReportMissed = Callable[[Schedule, int, bool], Awaitable[None]]
ReportInterrupted = Callable[[Schedule, ScheduleRun, Interruption], Awaitable[None]]


async def _nobody(row: Schedule, run: ScheduleRun, reason: Interruption) -> None:
    """Nobody to tell of an interrupted run."""


class SchedulerService:
    def __init__(
        self,
        db: Database,
        coordination: Coordination,
        trigger_of: TriggerOf,
        run_job: RunJob,
        report_missed: ReportMissed,
        *,
        replica: str,
        lease_ttl: float = 15.0,
        sync_every: float = 2.0,
        missed: Literal["run_once", "skip"] = "run_once",
        coalesce: bool = True,
        misfire_grace: float = 300.0,
        report_interrupted: ReportInterrupted = _nobody,
    ) -> None:
        self.db = db
        self.coordination = coordination
        self.trigger_of = trigger_of
        self.run_job = run_job
        self.report_missed = report_missed
        self.report_interrupted = report_interrupted
        self.replica = replica
        self.lease_ttl = lease_ttl
        self.sync_every = sync_every
        self.missed = missed
        self.coalesce = coalesce
        self.misfire_grace = misfire_grace
        self.lease: Lease | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # set by stop(): the loops end at their next wait
        self._halt = asyncio.Event()  # set by stop(): a standby's wait for its next ask ends
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: datetime | None = None
        self._applied: dict[int, tuple[datetime, str]] = {}
        self._recovered_at = 0.0  # monotonic time of the last look for runs of dead replicas
        self._in_flight = False  # the last look saw a run whose replica still held its lease

    @property
    def is_leader(self) -> bool:
        return self.lease is not None and self._scheduler is not None

    def jobs(self) -> int:
        """Jobs in the in-memory store (0 when not the leader)."""
        return len(self._scheduler.get_jobs()) if self._scheduler is not None else 0

    async def start(self) -> None:
        self._stopping = False
        self._halt.clear()
        self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        """Look at the schedules table now (a local change was made)."""
        self._wake.set()

    def follow(self, notices: Notices) -> None:
        """A change of the schedules table (by any replica) wakes the sync; the periodic look
        stays only as a safety net for a lost notification."""
        notices.on_change(("schedules",), self.wake)
        self.sync_every = QUIET

    async def stop(self) -> None:
        """Let the step under way end, then stop leading and free the lease at once.

        The leader's loop ends on the stop flag at its next wait: a step of it cancelled
        half-way left what it had begun (a run of a dead replica taken over but never started,
        or recorded `interrupted` with the chat never told; a missed fire recorded but not
        reported) and cancelled its database calls. Only a step still busy after
        `STEP_PATIENCE` (a late fire's job run by the catch-up) is cancelled; the flag also ends
        the loop should a cancellation ever be lost below it again (it was, in the Redis
        client: see storage/coordination/redis_backend.py; the heartbeat renewed on, the
        leader waited for it, stop() never returned)."""
        self._stopping = True
        self._halt.set()
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait([self._task], timeout=STEP_PATIENCE)
            if not done:
                self._task.cancel()
                done, _ = await asyncio.wait([self._task], timeout=STOP_PATIENCE)
            if not done:
                log.warning("scheduler: %s did not stop within %s s", self.replica, STOP_PATIENCE)
        self._stop_scheduler()
        await finish(self._tasks, 10, "scheduler")
        if self.lease is not None:
            with contextlib.suppress(Exception):
                await self.coordination.release(self.lease)
            self.lease = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                self.lease = await self.coordination.acquire(LEASE, self.lease_ttl)
                if self.lease is not None:
                    await self._lead(self.lease)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler: leadership loop failed; retrying")
            self._stop_scheduler()
            if self._stopping:
                return  # stop() frees the lease, if still held: the next leader need not wait
            self.lease = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_ttl / 3):
                    await self._halt.wait()

    async def _lead(self, lease: Lease) -> None:
        log.info("scheduler: %s leads (fence %s)", self.replica, lease.fence)
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": self.coalesce, "misfire_grace_time": int(self.misfire_grace)},
        )
        scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        scheduler.start()
        self._scheduler, self._seen, self._applied = scheduler, None, {}
        LEADER.set(1)
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(lease, lost))
        try:
            await self._sync()
            if not self._stopping:
                await self._catch_up()
            if not self._stopping:
                await self._recover()
            while not lost.is_set() and not self._stopping:
                # while a run is in flight, look every lease time whether its replica died
                # (otherwise a change, or the quiet time, wakes the loop). `asyncio.timeout`,
                # not `wait_for`: Python 3.11's `wait_for` returns instead of raising when it is
                # cancelled as the wake-up arrives, so a `stop()` at that moment was lost
                patience = min(self.sync_every, self.lease_ttl) if self._in_flight else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(patience or self.sync_every):
                        await self._wake.wait()
                self._wake.clear()
                if lost.is_set() or self._stopping:
                    break  # a stopping leader starts no step it would leave half-done
                await self._sync()
                if time.monotonic() - self._recovered_at >= self.lease_ttl:
                    await self._recover()
        finally:
            await cancel(heartbeat)  # (never swallows a cancellation of this task: see there)

    async def _heartbeat(self, lease: Lease, lost: asyncio.Event) -> None:
        """Renew the lease every third of its time, whatever else is going on; on failure stop
        firing at once (another replica may already lead)."""
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                kept = await self.coordination.renew(lease, self.lease_ttl)
            except Exception:
                kept = False
            if not kept:
                log.warning("scheduler: %s lost the lease; stopping", self.replica)
                self.lease = None
                self._stop_scheduler()
                lost.set()
                self._wake.set()
                return

    def _stop_scheduler(self) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(Exception):
                self._scheduler.shutdown(wait=False)
            self._scheduler = None
            LEADER.set(0)

    async def _sync(self) -> None:
        """Apply schedules changed since the last look to the job store."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        started = datetime.now(UTC)
        moved: list[tuple[int, datetime | None]] = []
        for row in await schedules.active_since(self.db, self._seen):
            if self._applied.get(row.id) == (row.updated_at, row.status):
                continue  # seen again only because of the look-back
            self._applied[row.id] = (row.updated_at, row.status)
            job_id = str(row.id)
            if scheduler.get_job(job_id) is not None:
                scheduler.remove_job(job_id)
            if row.status != "active":
                continue
            trigger = self.trigger_of(row)
            if trigger is None:
                log.warning("scheduler: schedule %s has no usable trigger", row.id)
                continue
            scheduler.add_job(_noop, trigger, id=job_id, name=row.task[:80])
            job = scheduler.get_job(job_id)
            next_at = job.next_run_time if job is not None else None
            if next_at != row.next_run_at:
                moved.append((row.id, next_at))
        await schedules.set_next_runs(self.db, moved)
        # a change committed while we read may carry an earlier timestamp: look back a little
        self._seen = started - timedelta(seconds=5)

    def _submitted(self, event: JobSubmissionEvent) -> None:
        times = list(event.scheduled_run_times or [])
        if not times:
            return
        self._spawn(self._fire(int(event.job_id), times[-1]))

    async def _fire(self, schedule_id: int, fire_time: datetime, *, late: bool = False) -> None:
        lease = self.lease
        if lease is None:
            return
        row = await schedules.get(self.db, schedule_id)
        if row is None or row.status != "active":
            return
        run = await schedules.claim_run(
            self.db, schedule_id, fire_time, replica=f"{self.replica}#fence{lease.fence}"
        )
        if run is None:
            return  # fired already (another replica, or before a restart)
        LATENESS.observe(max(0.0, (datetime.now(UTC) - fire_time).total_seconds()))
        if row.kind == "once":
            await schedules.set_status(self.db, row.id, "completed", expect=("active",))
        else:
            self._refresh_next(row)
        await self.execute(row, run, late)

    async def execute(
        self, row: Schedule, run: ScheduleRun, late: bool, held: Lease | None = None
    ) -> None:
        """Run the claimed `run` of `row` under its lease (`held`, or taken now), renewed while
        it runs; a failure is recorded on the run."""
        name = recovery.lease_name(run.id)
        if held is None:
            try:
                held = await self.coordination.acquire(name, self.lease_ttl)
            except Exception as exc:  # the keeper takes it once the backend answers
                log.warning("scheduler: run %s starts without its lease (%s)", run.id, exc)
        runner = asyncio.current_task()
        assert runner is not None
        keeper = asyncio.create_task(
            recovery.keep(self.coordination, name, held, self.lease_ttl, runner)
        )
        try:
            await self.run_job(row, run, late)
        except Exception as exc:
            log.exception("scheduler: job of schedule %s failed", row.id)
            await schedules.finish_run(self.db, run.id, ok=False, error=str(exc)[:500])
        finally:
            await cancel(keeper)
            if held is not None:
                with contextlib.suppress(Exception):
                    await self.coordination.release(held)
        status = await schedules.run_status(self.db, run.id)
        SCHEDULE_RUNS.labels("succeeded" if status == "succeeded" else "failed").inc()

    async def _recover(self) -> None:
        """Runs still `running` whose replica died (nobody holds their lease): each is run
        again once, or recorded `interrupted` and the chat told (`recovery.decide`)."""
        self._recovered_at, self._in_flight = time.monotonic(), False
        lease = self.lease
        if lease is None:
            return
        me = f"{self.replica}#fence{lease.fence}"
        for run in await schedules.stranded_runs(self.db, timedelta(seconds=self.lease_ttl)):
            if self._stopping:
                return  # the next leader looks again
            try:
                held = await self.coordination.acquire(recovery.lease_name(run.id), self.lease_ttl)
            except Exception as exc:  # nobody can tell the dead from the living now
                log.warning("scheduler: recovery of runs paused: %s", exc)
                return
            if held is None:
                self._in_flight = True  # its replica is alive and renews the lease
                continue
            row = await schedules.get(self.db, run.schedule_id)
            reason = recovery.decide(row, run, datetime.now(UTC))
            if reason is None and row is not None:
                taken = await schedules.take_over_run(self.db, run, replica=me)
                if taken is not None:
                    log.warning("scheduler: run %s of a dead replica runs again", run.id)
                    self._spawn(self.execute(row, taken, True, held))
                    continue
            elif await schedules.interrupt_run(self.db, run, replica=me, reason=str(reason)):
                log.warning("scheduler: run %s of a dead replica interrupted (%s)", run.id, reason)
                SCHEDULE_RUNS.labels("interrupted").inc()
                if row is not None and reason is not None:
                    await self.report_interrupted(row, run, reason)
            with contextlib.suppress(Exception):
                await self.coordination.release(held)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background (`stop` waits for it)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refresh_next(self, row: Schedule) -> None:
        scheduler = self._scheduler
        job = scheduler.get_job(str(row.id)) if scheduler is not None else None
        if job is not None:
            self._spawn(schedules.set_next_runs(self.db, [(row.id, job.next_run_time)]))

    async def _catch_up(self) -> None:
        """Fires missed while no leader ran: run the latest once (or skip), record, report."""
        now = datetime.now(UTC)
        last = await schedules.last_fires(self.db)
        for row in await schedules.live(self.db):
            if self._stopping:
                return  # the next leader catches up
            if row.status != "active":
                continue
            trigger = self.trigger_of(row)
            if trigger is None:
                continue
            since = last.get(row.id) or row.confirmed_at
            if since is None:
                continue
            missed = _fires_between(trigger, since, now - timedelta(seconds=self.misfire_grace))
            if not missed:
                continue
            lease = self.lease
            if lease is None:
                return
            replica = f"{self.replica}#fence{lease.fence}"
            run_late = missed[-1] if self.missed == "run_once" else None
            for fire_time in missed[-MAX_MISSED_ROWS:]:
                if fire_time != run_late and await schedules.claim_run(
                    self.db, row.id, fire_time, replica=replica, status="missed"
                ):
                    SCHEDULE_RUNS.labels("missed").inc()
            await self.report_missed(row, len(missed), run_late is not None)
            if run_late is not None:
                await self._fire(row.id, run_late, late=True)


def _fires_between(trigger: BaseTrigger, since: datetime, until: datetime) -> list[datetime]:
    """Fire times in (since, until], at most a few hundred."""
    fires: list[datetime] = []
    previous: datetime | None = None
    moment = since + timedelta(microseconds=1)
    while len(fires) < 500:
        following: Any = trigger.get_next_fire_time(previous, moment)
        if following is None or following > until:
            break
        if following > since:
            fires.append(following)
        previous, moment = following, following + timedelta(microseconds=1)
    return fires


async def _noop() -> None:
    """APScheduler needs a job function; the fire itself is handled on submission."""
