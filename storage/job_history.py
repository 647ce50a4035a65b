"""What a scheduled job's past runs say: its latest finished runs, when it recovered after a
failure, and its remembered runs (`knowledge` kind `job_run`) nearest to a text.

Usage::

    finished = await latest_finished(db, schedule_id, limit=20)      # newest first
    back = await recovered_after(db, schedule_id, failed_at)         # the next success, or None
    async with db.session() as session:
        rows = await runs_like(session, vector, schedule_id=3, targets=["db-2"], failed=True)
        await forget_beyond(session, 3, keep=200)                    # the job's 200 newest stay
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.knowledge import nearest_among
from storage.models import Knowledge, Schedule, ScheduleRun

KIND = "job_run"


async def latest_finished(db: Database, schedule_id: int, *, limit: int = 20) -> list[ScheduleRun]:
    """The job's latest runs that ended (succeeded or failed), newest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(ScheduleRun)
            .where(
                ScheduleRun.schedule_id == schedule_id,
                ScheduleRun.status.in_(("succeeded", "failed")),
            )
            .order_by(ScheduleRun.fire_time.desc())
            .limit(limit)
        )
        return list(rows)


async def recovered_after(db: Database, schedule_id: int, after: datetime) -> datetime | None:
    """When the job next succeeded after `after` (a failed run's fire time), or None."""
    async with db.session() as session:
        found: datetime | None = await session.scalar(
            select(ScheduleRun.fire_time)
            .where(
                ScheduleRun.schedule_id == schedule_id,
                ScheduleRun.status == "succeeded",
                ScheduleRun.fire_time > after,
            )
            .order_by(ScheduleRun.fire_time)
            .limit(1)
        )
        return found


async def runs_of_chat(
    db: Database,
    chat_id: str,
    *,
    since: datetime,
    job_id: int | None = None,
    status: str = "all",
    limit: int = 10,
) -> list[tuple[ScheduleRun, str]]:
    """The chat's job runs fired since `since`, newest first, with their job's task: of one
    job when `job_id` is given, of one status unless `status` is "all"."""
    query = (
        select(ScheduleRun, Schedule.task)
        .join(Schedule, Schedule.id == ScheduleRun.schedule_id)
        .where(Schedule.chat_id == chat_id, ScheduleRun.fire_time >= since)
        .order_by(ScheduleRun.fire_time.desc())
        .limit(limit)
    )
    if job_id is not None:
        query = query.where(Schedule.id == job_id)
    if status != "all":
        query = query.where(ScheduleRun.status == status)
    async with db.session() as session:
        return [(run, task) for run, task in (await session.execute(query)).all()]


async def latest_failure(db: Database, chat_id: str, job_id: int) -> tuple[ScheduleRun, str] | None:
    """The latest failed run of the chat's job `job_id`, with the job's task, or None."""
    query = (
        select(ScheduleRun, Schedule.task)
        .join(Schedule, Schedule.id == ScheduleRun.schedule_id)
        .where(
            Schedule.id == job_id,
            Schedule.chat_id == chat_id,
            ScheduleRun.status == "failed",
        )
        .order_by(ScheduleRun.fire_time.desc())
        .limit(1)
    )
    async with db.session() as session:
        found = (await session.execute(query)).first()
    return None if found is None else (found[0], found[1])


async def forget_beyond(session: AsyncSession, schedule_id: int, *, keep: int) -> int:
    """Keep only the job's `keep` newest remembered runs (its memory stays bounded, and so does
    the share of the knowledge index incidents are recalled through): how many were forgotten."""
    mine = (Knowledge.kind == KIND, Knowledge.meta.contains({"schedule_id": schedule_id}))
    newest = select(Knowledge.id).where(*mine).order_by(Knowledge.id.desc()).limit(keep)
    gone = await session.execute(
        delete(Knowledge).where(*mine, Knowledge.id.not_in(newest)).returning(Knowledge.id)
    )
    return len(gone.all())


async def runs_like(
    session: AsyncSession,
    vector: Sequence[float],
    *,
    schedule_id: int | None = None,
    targets: Sequence[str] = (),
    failed: bool | None = None,
    exclude: Sequence[str] = (),
    limit: int = 3,
) -> list[tuple[Knowledge, float]]:
    """Remembered job runs nearest to `vector`: of the job or touching one of the `targets`
    (any job's when neither is given), failed or not (`failed`), without the `exclude`d
    source ids. (row, cosine distance), nearest first."""
    where: list[ColumnElement[bool]] = []
    scope: list[ColumnElement[bool]] = []
    if schedule_id is not None:
        scope.append(Knowledge.meta.contains({"schedule_id": schedule_id}))
    if targets:
        scope.append(Knowledge.meta["targets"].has_any(array(list(targets))))
    if scope:
        where.append(or_(*scope))
    if failed is not None:
        where.append(Knowledge.meta.contains({"ok": not failed}))
    if exclude:
        where.append(Knowledge.source_id.not_in(list(exclude)))
    return await nearest_among(session, vector, kinds=[KIND], limit=limit, where=where)
