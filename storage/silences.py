"""Silences that are in force: listing them for a chat and ending one early (audited).

rows = await active(db, "oc_ops")
ended = await end(db, 3, "oc_ops", by="ou_bob")   # None: no such active silence here
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from storage.database import Database
from storage.incidents import record_event
from storage.models import Silence


def _in_force(chat_id: str) -> list[ColumnElement[bool]]:
    return [
        Silence.ends_at > func.now(),
        Silence.cancelled_at.is_(None),
        (Silence.chat_id.is_(None)) | (Silence.chat_id == chat_id),
    ]


async def active(db: Database, chat_id: str) -> Sequence[Silence]:
    """The silences in force in `chat_id` (its own and global ones), ending soonest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(Silence).where(*_in_force(chat_id)).order_by(Silence.ends_at)
        )
        return rows.all()


async def in_force(db: Database, chat_id: str | None = None) -> Sequence[Silence]:
    """The silences in force: of one chat (its own and global ones), or of every chat."""
    if chat_id is not None:
        return await active(db, chat_id)
    async with db.session() as session:
        rows = await session.scalars(
            select(Silence)
            .where(Silence.ends_at > func.now(), Silence.cancelled_at.is_(None))
            .order_by(Silence.ends_at)
        )
        return rows.all()


async def get(db: Database, silence_id: int) -> Silence | None:
    async with db.session() as session:
        return await session.get(Silence, silence_id)


async def create(
    db: Database,
    *,
    chat_id: str | None,
    matcher: str,
    terms: list[Any],
    reason: str,
    by: str,
    until: datetime,
) -> Silence:
    """A silence from now until `until` (`/silence`, the REST API); audited."""
    async with db.session() as session:
        row = Silence(
            chat_id=chat_id,
            matcher=matcher,
            matchers={"terms": terms},
            reason=reason[:500],
            created_by=by,
            ends_at=until,
        )
        session.add(row)
        await session.flush()
    await record_event(
        db, None, "silence.created", actor=by, message=matcher, data={"id": row.id, "chat": chat_id}
    )
    return row


async def end(db: Database, silence_id: int, chat_id: str, *, by: str) -> Silence | None:
    """End a silence in force in `chat_id` now; the ended row, or None when there is none
    (unknown, another chat's, already ended). Recorded in the audit timeline."""
    async with db.session() as session:
        ended = await session.scalar(
            update(Silence)
            .where(Silence.id == silence_id, *_in_force(chat_id))
            .values(cancelled_at=func.now())
            .returning(Silence)
        )
    if ended is not None:
        await record_event(
            db,
            None,
            "silence.ended",
            actor=by,
            message=ended.matcher,
            data={"id": ended.id, "chat": chat_id},
        )
    return ended
