"""Scheduler figures: 10,000 schedules loaded, and how late fires start (fire time → job start).

A fresh embedded Postgres gets `--schedules` active schedules compiled by the real parser and
compiler: most are daily jobs at other times of day, and `--firing` are one-shots due within
the next `--window` seconds. A `SchedulerService` (memory coordination: one process) takes
over, loads them all into APScheduler, and the job function records when each fire started.
Prints the load time, the jobs in the store, and the lateness of the fires (median, p99, max).
Asserts nothing.

    .venv/bin/python bench/scheduler.py [--schedules 10000] [--firing 200] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from figures import figure
from sqlalchemy import insert

from bot.scheduling.leader import SchedulerService
from bot.scheduling.wiring import trigger_of
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade
from storage.models import Schedule, ScheduleRun
from workflows.schedule.compiler import COALESCE, MISFIRE_GRACE_TIME
from workflows.schedule.parser import parse
from workflows.schedule.spec import Once, to_json


async def seed(db: Database, total: int, firing: int, window: float) -> datetime:
    now = datetime.now(UTC)
    rows = []
    for n in range(total - firing):
        hour, minute = random.randrange(24), random.randrange(60)
        result = parse(f"每天{hour}点{minute}分检查磁盘", now=now, timezone="Asia/Shanghai")
        assert result.spec is not None, result
        rows.append(_row(n, result.spec.kind, to_json(result.spec), now))
    starts = now + timedelta(seconds=20)  # after the takeover has loaded everything
    for n in range(firing):
        at = starts + timedelta(seconds=window * n / max(1, firing))
        spec = Once(at.astimezone(UTC).replace(microsecond=0), "UTC")
        rows.append(_row(n, "once", to_json(spec), now))
    async with db.session() as session:
        for chunk in range(0, len(rows), 1000):
            await session.execute(insert(Schedule), rows[chunk : chunk + 1000])
    return starts


def _row(n: int, kind: str, spec: dict[str, object], now: datetime) -> dict[str, object]:
    return {
        "chat_id": "oc_bench",
        "created_by": "ou_bench",
        "source_text": f"bench {n}",
        "task": f"job {n}",
        "timezone": "Asia/Shanghai",
        "kind": kind,
        "spec": spec,
        "status": "active",
        "confirmed_at": now,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--firing", type=int, default=200)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-scheduler-"))
    server = EmbeddedPostgres(home)
    await asyncio.to_thread(server.start)
    try:
        db = await Database.open(server.dsn, pool_size=5)
        await upgrade(db)
        began = time.perf_counter()
        starts = await seed(db, args.schedules, args.firing, args.window)
        print(f"seeded {args.schedules} schedules in {time.perf_counter() - began:.1f} s")
        lateness: list[float] = []

        async def run_job(row: Schedule, run: ScheduleRun, late: bool) -> None:
            lateness.append((datetime.now(UTC) - run.fire_time).total_seconds())

        async def report(row: Schedule, count: int, ran_late: bool) -> None:
            return None

        service = SchedulerService(
            db,
            MemoryCoordination(),
            trigger_of,
            run_job,
            report,
            replica="bench",
            coalesce=COALESCE,
            misfire_grace=float(MISFIRE_GRACE_TIME),
        )
        began = time.perf_counter()
        await service.start()
        while service.jobs() < args.schedules - args.firing:
            await asyncio.sleep(0.05)
        loaded = time.perf_counter() - began
        print(f"took over and loaded {service.jobs()} jobs in {loaded:.2f} s")
        figure(7, f"takeover loading {service.jobs()} schedules", loaded, "s", "", None)
        deadline = starts + timedelta(seconds=args.window + 10)
        while len(lateness) < args.firing and datetime.now(UTC) < deadline:
            await asyncio.sleep(0.2)
        await service.stop()
        await db.close()
        if not lateness:
            print("no fires recorded")
            return
        ordered = sorted(lateness)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
        print(
            f"fires: {len(lateness)} of {args.firing}; lateness (fire time → job start): "
            f"median {statistics.median(lateness) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms (goal p99 < 1000 ms)"
        )
        late = p99 * 1000
        figure(
            7, f"fire lateness p99, {args.schedules} schedules", late, "ms", "< 1000", late < 1000
        )
    finally:
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
