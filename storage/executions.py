"""Plugin runs: claimed once per (run id, step), finished once, counted for the policy's quotas.

Usage::

    row, fresh = await begin_execution(db, run_id, "execute", "command", params,
                                       incident_id=42, target="command:restart:service=web")
    if fresh:
        ...run it...
        await finish_execution(db, row.id, ok=True, summary="restarted")
    used = await usage(db, "command:restart:service=web")   # .on_target, .auto: last hour
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import Execution

HOUR = timedelta(hours=1)


async def begin_execution(
    db: Database,
    run_id: str,
    step: str,
    plugin: str,
    params: dict[str, Any],
    *,
    incident_id: int | None = None,
    dry_run: bool = False,
    target: str | None = None,
    auto: bool = False,
    requested_by: str | None = None,
) -> tuple[Execution, bool]:
    """Claim the step `(run_id, step)`: (row, True) when this call created it and must run the
    plugin; (existing row, False) when an earlier attempt already started it: a replayed step
    never acts twice."""
    statement = (
        insert(Execution)
        .values(
            run_id=uuid.UUID(run_id),
            incident_id=incident_id,
            step=step,
            plugin=plugin,
            params=params,
            dry_run=dry_run,
            status="running",
            target=target,
            auto=auto,
            requested_by=requested_by,
        )
        .on_conflict_do_nothing(constraint="uq_executions_run_step")
        .returning(Execution.id)
    )
    async with db.session() as session:
        created = (await session.execute(statement)).scalar_one_or_none()
        row = await session.scalar(
            select(Execution).where(Execution.run_id == uuid.UUID(run_id), Execution.step == step)
        )
    assert row is not None
    return row, created is not None


async def finish_execution(
    db: Database,
    execution_id: int,
    *,
    ok: bool,
    summary: str,
    output: str = "",
    data: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    async with db.session() as session:
        await session.execute(
            update(Execution)
            .where(Execution.id == execution_id)
            .values(
                status="succeeded" if ok else "failed",
                summary=summary,
                output=output,
                data=data or {},
                error=error,
                finished_at=func.now(),
            )
        )


@dataclass(frozen=True)
class Usage:
    """What the policy's quotas count: runs on one target, automatic runs anywhere."""

    on_target: int
    auto: int


async def usage(db: Database, target: str, within: timedelta = HOUR) -> Usage:
    """Runs on `target` and automatic runs (dry runs excluded) started within `within`."""
    recent = Execution.created_at > func.now() - within
    real = Execution.dry_run.is_(False)
    statement = select(
        func.count().filter(Execution.target == target),
        func.count().filter(Execution.auto.is_(True)),
    ).where(recent, real)
    async with db.session() as session:
        on_target, auto = (await session.execute(statement)).one()
    return Usage(on_target=int(on_target or 0), auto=int(auto or 0))
