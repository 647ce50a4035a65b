"""What incident memory (`workflows.memory.recall`) reads and writes: a finished incident's
rows (its story), an incident with its latest alert, and an operator's numbered note.

Usage::

    rows = await story_rows(db, 41, statuses=("resolved", "escalated"), endings=(...))
    found = await with_latest_alert(db, 42)          # (incident, alert or None), or None
    knowledge_id = await remember_note(db, 41, title=..., content=..., embedding=...,
                                       model="hashing", meta={...})   # source id "41:<n>"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Integer, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.knowledge import remember
from storage.models import Alert, Diagnosis, Execution, Incident, IncidentEvent, Knowledge, Proposal


@dataclass(frozen=True)
class StoryRows:
    """An incident and what happened to it: its latest alert, diagnosis and proposal, its
    latest real (not dry-run) execution, and its ending events in order."""

    incident: Incident
    alert: Alert | None
    diagnosis: Diagnosis | None
    proposal: Proposal | None
    execution: Execution | None
    events: Sequence[IncidentEvent]


Row = TypeVar("Row", Alert, Diagnosis, Proposal)


async def _latest(session: AsyncSession, model: type[Row], incident_id: int) -> Row | None:
    found: Row | None = await session.scalar(
        select(model).where(model.incident_id == incident_id).order_by(model.id.desc()).limit(1)
    )
    return found


async def story_rows(
    db: Database, incident_id: int, *, statuses: Sequence[str], endings: Sequence[str]
) -> StoryRows | None:
    """The incident's story, read in one transaction; None when it does not exist or its
    status is not one of `statuses`. `endings` are the event kinds kept."""
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None or incident.status not in statuses:
            return None
        execution = await session.scalar(
            select(Execution)
            .where(Execution.incident_id == incident_id, Execution.dry_run.is_(False))
            .order_by(Execution.id.desc())
            .limit(1)
        )
        events: Sequence[IncidentEvent] = (
            await session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind.in_(endings))
                .order_by(IncidentEvent.id)
            )
        ).all()
        return StoryRows(
            incident=incident,
            alert=await _latest(session, Alert, incident_id),
            diagnosis=await _latest(session, Diagnosis, incident_id),
            proposal=await _latest(session, Proposal, incident_id),
            execution=execution,
            events=events,
        )


async def with_latest_alert(db: Database, incident_id: int) -> tuple[Incident, Alert | None] | None:
    """The incident and its latest alert, read in one transaction; None without the incident."""
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            return None
        return incident, await _latest(session, Alert, incident_id)


async def remember_note(
    db: Database,
    incident_id: int,
    *,
    title: str,
    content: str,
    embedding: Sequence[float],
    model: str,
    meta: dict[str, Any],
) -> int:
    """Store a note about the incident as knowledge kind `note`, numbered after the
    incident's earlier notes (source id `<incident>:<n>`); returns its knowledge id."""
    async with db.session() as session:
        # the incident's row lock numbers its notes one at a time
        await session.scalar(
            select(Incident.id).where(Incident.id == incident_id).with_for_update()
        )
        prefix = f"{incident_id}:"
        number = await session.scalar(
            select(
                func.coalesce(
                    func.max(func.split_part(Knowledge.source_id, ":", 2).cast(Integer)), 0
                )
            ).where(Knowledge.kind == "note", Knowledge.source_id.startswith(prefix))
        )
        return await remember(
            session,
            kind="note",
            source_id=f"{prefix}{int(number or 0) + 1}",
            title=title,
            content=content,
            embedding=embedding,
            model=model,
            meta=meta,
        )
