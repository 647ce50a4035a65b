"""Postmortem drafts: one row per resolved incident, claimed once, with its Feishu document.

if await claim(db, incident_id, by="system"):      # this replica drafts it
    ...
    await published(db, incident_id, document_id)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import Incident, Postmortem


async def of_incident(db: Database, incident_id: int) -> Postmortem | None:
    async with db.session() as session:
        found: Postmortem | None = await session.scalar(
            select(Postmortem).where(Postmortem.incident_id == incident_id)
        )
    return found


async def claim(db: Database, incident_id: int, *, by: str) -> bool:
    """Take the first draft of the incident's postmortem (False: one exists)."""
    statement = (
        insert(Postmortem)
        .values(incident_id=incident_id, created_by=by)
        .on_conflict_do_nothing(index_elements=["incident_id"])
        .returning(Postmortem.id)
    )
    async with db.session() as session:
        return (await session.execute(statement)).scalar_one_or_none() is not None


async def published(db: Database, incident_id: int, document_id: str) -> None:
    async with db.session() as session:
        await session.execute(
            update(Postmortem)
            .where(Postmortem.incident_id == incident_id)
            .values(document_id=document_id, drafts=Postmortem.drafts + 1)
        )


async def waiting(db: Database, within: timedelta, limit: int = 20) -> Sequence[int]:
    """Incidents resolved within `within` that have no postmortem yet."""
    async with db.session() as session:
        rows = await session.scalars(
            select(Incident.id)
            .where(
                Incident.status == "resolved",
                Incident.resolved_at > func.now() - within,
                ~select(Postmortem.id).where(Postmortem.incident_id == Incident.id).exists(),
            )
            .order_by(Incident.id)
            .limit(limit)
        )
        return rows.all()


async def claim_tasks(db: Database, incident_id: int, *, by: str) -> bool:
    """Take the confirmation of the action items (once: False when someone confirmed)."""
    statement = (
        update(Postmortem)
        .where(Postmortem.incident_id == incident_id, Postmortem.tasks_by.is_(None))
        .values(tasks_by=by)
        .returning(Postmortem.id)
    )
    async with db.session() as session:
        return (await session.execute(statement)).scalar_one_or_none() is not None


async def tasks_made(db: Database, incident_id: int, guids: list[str]) -> None:
    async with db.session() as session:
        await session.execute(
            update(Postmortem).where(Postmortem.incident_id == incident_id).values(tasks=guids)
        )


async def release_tasks(db: Database, incident_id: int) -> None:
    async with db.session() as session:
        await session.execute(
            update(Postmortem).where(Postmortem.incident_id == incident_id).values(tasks_by=None)
        )
