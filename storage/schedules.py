"""Schedules and their runs: `schedules` is the truth the scheduler is rebuilt from, and a run is
claimed by inserting `(schedule_id, fire_time)` — unique — so a fire happens once anywhere.

Usage::

    row = await create(db, chat_id="oc_1", created_by="ou_1", source_text="每天9点…", task="…",
                       timezone="Asia/Shanghai", kind="cron", spec={...}, cron="0 9 * * *",
                       run_at=None, action={...})
    await set_status(db, row.id, "active", confirmed_by="ou_1")
    run = await claim_run(db, row.id, fire_time, replica="host-1:123")   # None: already fired
    await finish_run(db, run.id, ok=True, output="…")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import IncidentEvent, Schedule, ScheduleRun
from storage.statuses import ScheduleRunStatus, ScheduleStatus

LIVE = ("active", "paused")


async def create(
    db: Database,
    *,
    chat_id: str,
    created_by: str,
    source_text: str,
    task: str,
    timezone: str,
    kind: str,
    spec: dict[str, Any],
    cron: str | None,
    run_at: datetime | None,
    action: dict[str, Any],
    next_run_at: datetime | None,
) -> Schedule:
    """A schedule awaiting confirmation (status `pending`)."""
    row = Schedule(
        chat_id=chat_id,
        created_by=created_by,
        source_text=source_text[:2000],
        task=task[:500],
        timezone=timezone,
        kind=kind,
        spec=spec,
        cron=cron,
        run_at=run_at,
        action=action,
        status="pending",
        next_run_at=next_run_at,
    )
    async with db.session() as session:
        session.add(row)
        await session.flush()
        await session.refresh(row)
    return row


async def get(db: Database, schedule_id: int) -> Schedule | None:
    async with db.session() as session:
        return await session.get(Schedule, schedule_id)


async def update_fields(db: Database, schedule_id: int, **values: Any) -> None:
    async with db.session() as session:
        await session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id)
            .values(updated_at=func.now(), **values)
        )


async def set_status(
    db: Database,
    schedule_id: int,
    status: ScheduleStatus,
    *,
    expect: Sequence[ScheduleStatus],
    **values: Any,
) -> bool:
    """Move to `status` only from one of `expect`; True when this call changed it."""
    async with db.session() as session:
        changed = await session.scalar(
            update(Schedule)
            .where(Schedule.id == schedule_id, Schedule.status.in_(list(expect)))
            .values(status=status, updated_at=func.now(), **values)
            .returning(Schedule.id)
        )
    return changed is not None


async def expire_drafts(db: Database, older_than: timedelta) -> list[int]:
    """Expire the drafts (status `pending`) made more than `older_than` ago; their ids."""
    async with db.session() as session:
        found = await session.scalars(
            update(Schedule)
            .where(Schedule.status == "pending", Schedule.created_at < func.now() - older_than)
            .values(status="expired", updated_at=func.now())
            .returning(Schedule.id)
        )
        return list(found.all())


async def live(db: Database, chat_id: str | None = None) -> Sequence[Schedule]:
    """Active and paused schedules (of one chat when given), oldest first."""
    query = select(Schedule).where(Schedule.status.in_(LIVE)).order_by(Schedule.id)
    if chat_id is not None:
        query = query.where(Schedule.chat_id == chat_id)
    async with db.session() as session:
        return (await session.scalars(query)).all()


async def active_since(db: Database, since: datetime | None) -> Sequence[Schedule]:
    """Every schedule changed after `since` (all when None), whatever its status."""
    query = select(Schedule).order_by(Schedule.id)
    if since is not None:
        query = query.where(Schedule.updated_at > since)
    async with db.session() as session:
        return (await session.scalars(query)).all()


async def set_next_runs(db: Database, pairs: Sequence[tuple[int, datetime | None]]) -> None:
    """Record when schedules fire next, in one statement, without touching `updated_at`
    (the scheduler follows `updated_at`: its own bookkeeping must not look like a change)."""
    if not pairs:
        return
    table = Schedule.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(table.c.id == bindparam("sid"))
        .values(next_run_at=bindparam("next_at"), updated_at=table.c.updated_at)
    )
    async with db.session() as session:
        await session.execute(
            statement, [{"sid": sid, "next_at": next_at} for sid, next_at in pairs]
        )


async def claim_run(
    db: Database,
    schedule_id: int,
    fire_time: datetime,
    *,
    replica: str,
    status: ScheduleRunStatus = "running",
) -> ScheduleRun | None:
    """Claim the fire `(schedule_id, fire_time)`; None when some process already claimed it."""
    statement = (
        insert(ScheduleRun)
        .values(schedule_id=schedule_id, fire_time=fire_time, status=status, replica=replica)
        .on_conflict_do_nothing(constraint="uq_schedule_runs_fire")
        .returning(ScheduleRun.id)
    )
    async with db.session() as session:
        run_id = (await session.execute(statement)).scalar_one_or_none()
        if run_id is None:
            return None
        await session.execute(
            update(Schedule).where(Schedule.id == schedule_id).values(last_run_at=fire_time)
        )
        return await session.get(ScheduleRun, run_id)


async def finish_run(
    db: Database, run_id: int, *, ok: bool, output: str = "", error: str | None = None
) -> None:
    async with db.session() as session:
        await session.execute(
            update(ScheduleRun)
            .where(ScheduleRun.id == run_id)
            .values(
                status="succeeded" if ok else "failed",
                output=output[:8000],
                error=error,
                finished_at=func.now(),
            )
        )


async def stranded_runs(db: Database, older_than: timedelta) -> Sequence[ScheduleRun]:
    """Runs still `running` that were claimed more than `older_than` ago (by database time),
    oldest first: the candidates whose replica may have died."""
    async with db.session() as session:
        return (
            await session.scalars(
                select(ScheduleRun)
                .where(
                    ScheduleRun.status == "running",
                    ScheduleRun.created_at < func.now() - older_than,
                )
                .order_by(ScheduleRun.id)
            )
        ).all()


def _recovered(run: ScheduleRun, kind: str, by: str, reason: str) -> IncidentEvent:
    """The audit row of a recovery decision about `run` (claimed by a replica that died)."""
    return IncidentEvent(
        incident_id=None,
        kind=kind,
        actor=by,
        message=reason,
        data={
            "schedule_id": run.schedule_id,
            "run_id": run.id,
            "fire_time": run.fire_time.isoformat(),
            "dead_replica": run.replica,
        },
    )


async def take_over_run(db: Database, run: ScheduleRun, *, replica: str) -> ScheduleRun | None:
    """Take `run` over from its dead replica to run it again (its `reruns` counted), with the
    decision in the audit timeline; None when it is no longer `running` as `run` saw it."""
    async with db.session() as session:
        taken = await session.scalar(
            update(ScheduleRun)
            .where(
                ScheduleRun.id == run.id,
                ScheduleRun.status == "running",
                ScheduleRun.reruns == run.reruns,
            )
            .values(replica=replica, reruns=ScheduleRun.reruns + 1)
            .returning(ScheduleRun)
        )
        if taken is not None:
            session.add(_recovered(run, "schedule.run_rerun", replica, "replica_gone"))
        return taken


async def interrupt_run(db: Database, run: ScheduleRun, *, replica: str, reason: str) -> bool:
    """Record `run` (its replica died) as `interrupted` for `reason`, not run again, with the
    decision in the audit timeline; False when it is no longer `running`."""
    async with db.session() as session:
        changed = await session.scalar(
            update(ScheduleRun)
            .where(ScheduleRun.id == run.id, ScheduleRun.status == "running")
            .values(status="interrupted", error=reason, finished_at=func.now())
            .returning(ScheduleRun.id)
        )
        if changed is not None:
            session.add(_recovered(run, "schedule.run_interrupted", replica, reason))
    return changed is not None


async def runs(db: Database, schedule_id: int, limit: int = 10) -> Sequence[ScheduleRun]:
    """The latest runs of a schedule, newest first."""
    async with db.session() as session:
        return (
            await session.scalars(
                select(ScheduleRun)
                .where(ScheduleRun.schedule_id == schedule_id)
                .order_by(ScheduleRun.fire_time.desc())
                .limit(limit)
            )
        ).all()


async def last_fire(db: Database, schedule_id: int) -> datetime | None:
    async with db.session() as session:
        found: datetime | None = await session.scalar(
            select(func.max(ScheduleRun.fire_time)).where(ScheduleRun.schedule_id == schedule_id)
        )
        return found


async def last_fires(db: Database) -> dict[int, datetime]:
    """Every live schedule's latest recorded fire time, in one query."""
    async with db.session() as session:
        rows = await session.execute(
            select(ScheduleRun.schedule_id, func.max(ScheduleRun.fire_time))
            .join(Schedule, Schedule.id == ScheduleRun.schedule_id)
            .where(Schedule.status.in_(LIVE))
            .group_by(ScheduleRun.schedule_id)
        )
        return {int(sid): fire for sid, fire in rows.all()}


async def reconcile_system(
    db: Database,
    *,
    kind: str,
    chats: Sequence[str],
    wanted: dict[str, Any],
    next_run_at: datetime | None,
    source_text: str,
    by: str,
) -> bool:
    """Make the live system jobs of action type `kind` (created by `by`) match: one per chat
    of `chats` with the `wanted` columns (updated where they differ, created active where
    missing), none for other chats (deleted). Under one advisory lock, so replicas starting
    together agree. True when anything changed."""
    changed = False
    async with db.session() as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('larkops:advisor'))"))
        rows = await session.scalars(
            select(Schedule)
            .where(
                Schedule.created_by == by,
                Schedule.status.in_(LIVE),
                Schedule.action["type"].astext == kind,
            )
            .order_by(Schedule.id)
        )
        kept: set[str] = set()
        for row in rows.all():
            if row.chat_id not in chats or row.chat_id in kept:
                row.status = "deleted"
                changed = True
                continue
            kept.add(row.chat_id)
            if any(getattr(row, name) != value for name, value in wanted.items()):
                for name, value in wanted.items():
                    setattr(row, name, value)
                row.next_run_at = next_run_at
                changed = True
        for chat_id in chats:
            if chat_id in kept:
                continue
            session.add(
                Schedule(
                    chat_id=chat_id,
                    created_by=by,
                    source_text=source_text,
                    status="active",
                    next_run_at=next_run_at,
                    confirmed_by=by,
                    confirmed_at=datetime.now(UTC),
                    **wanted,
                )
            )
            changed = True
    return changed


async def run_status(db: Database, run_id: int) -> str | None:
    """The status a run is recorded with, or None without the run."""
    async with db.session() as session:
        found: str | None = await session.scalar(
            select(ScheduleRun.status).where(ScheduleRun.id == run_id)
        )
    return found
