"""War rooms: the Lark group made for an incident, once per incident.

room = await claim(db, incident_id, by="ou_alice")   # None: another click made it first
await opened(db, incident_id, chat_id="oc_…", card_message_id="om_…")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import Incident, WarRoom


async def of_incident(db: Database, incident_id: int) -> WarRoom | None:
    async with db.session() as session:
        found: WarRoom | None = await session.scalar(
            select(WarRoom).where(WarRoom.incident_id == incident_id)
        )
    return found


async def claim(db: Database, incident_id: int, *, by: str) -> bool:
    """Reserve the incident's war room; False when it has one (or one is being made)."""
    statement = (
        insert(WarRoom)
        .values(incident_id=incident_id, created_by=by)
        .on_conflict_do_nothing(index_elements=["incident_id"])
        .returning(WarRoom.id)
    )
    async with db.session() as session:
        return (await session.execute(statement)).scalar_one_or_none() is not None


async def release(db: Database, incident_id: int) -> None:
    """Forget a reservation whose group could not be made (so it may be tried again)."""
    async with db.session() as session:
        await session.execute(
            delete(WarRoom).where(WarRoom.incident_id == incident_id, WarRoom.chat_id.is_(None))
        )


async def opened(db: Database, incident_id: int, *, chat_id: str, card_message_id: str) -> None:
    async with db.session() as session:
        await session.execute(
            update(WarRoom)
            .where(WarRoom.incident_id == incident_id)
            .values(chat_id=chat_id, card_message_id=card_message_id)
        )


async def card_replaced(db: Database, incident_id: int, gone: str, card_message_id: str) -> bool:
    """The room's card `gone` (Lark will not update it again) gave way to `card_message_id`;
    False when another replica had replaced it already."""
    async with db.session() as session:
        result = await session.execute(
            update(WarRoom)
            .where(WarRoom.incident_id == incident_id, WarRoom.card_message_id == gone)
            .values(card_message_id=card_message_id)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_summary(db: Database, incident_id: int) -> bool:
    """Take the right to post the room's summary (once, whichever replica asks first)."""
    statement = (
        update(WarRoom)
        .where(WarRoom.incident_id == incident_id, WarRoom.summary_message_id.is_(None))
        .values(summary_message_id="")
        .returning(WarRoom.id)
    )
    async with db.session() as session:
        return (await session.execute(statement)).scalar_one_or_none() is not None


async def summarised(db: Database, incident_id: int, message_id: str) -> None:
    async with db.session() as session:
        await session.execute(
            update(WarRoom)
            .where(WarRoom.incident_id == incident_id)
            .values(summary_message_id=message_id)
        )


async def to_dissolve(db: Database, after: timedelta) -> Sequence[WarRoom]:
    """Rooms whose incident was resolved longer than `after` ago, not yet dissolved."""
    async with db.session() as session:
        rows = await session.scalars(
            select(WarRoom)
            .join(Incident, Incident.id == WarRoom.incident_id)
            .where(
                WarRoom.chat_id.is_not(None),
                WarRoom.dissolved_at.is_(None),
                Incident.status == "resolved",
                Incident.resolved_at < func.now() - after,
            )
            .limit(20)
        )
        return rows.all()


async def claim_dissolve(db: Database, room_id: int) -> bool:
    """Take the dissolving of a room (once, whichever replica asks first)."""
    statement = (
        update(WarRoom)
        .where(WarRoom.id == room_id, WarRoom.dissolved_at.is_(None))
        .values(dissolved_at=func.now())
        .returning(WarRoom.id)
    )
    async with db.session() as session:
        return (await session.execute(statement)).scalar_one_or_none() is not None
