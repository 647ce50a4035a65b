"""On-call rows: overrides made in the chat, and shift changes announced once.

await add_override(db, "primary", "ou_carol", starts, ends, by="ou_alice")
rows = await overrides(db, "primary")              # not yet over, oldest first
if await claim_handoff(db, "primary", at, "oc_ops", ["ou_bob"]):
    ...  # this replica announces it
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import OncallHandoff, OncallOverride


async def add_override(
    db: Database,
    schedule: str,
    user: str,
    starts: datetime,
    ends: datetime,
    *,
    by: str,
    reason: str = "",
) -> int:
    """Add an override (the same one again is not added twice); its id."""
    async with db.session() as session:
        same = await session.scalar(
            select(OncallOverride.id).where(
                OncallOverride.schedule == schedule,
                OncallOverride.user_id == user,
                OncallOverride.starts_at == starts,
                OncallOverride.ends_at == ends,
            )
        )
        if same is not None:
            return int(same)
        row = OncallOverride(
            schedule=schedule,
            user_id=user,
            starts_at=starts,
            ends_at=ends,
            created_by=by,
            reason=reason[:200],
        )
        session.add(row)
        await session.flush()
        return row.id


async def overrides(db: Database, schedule: str | None = None) -> Sequence[OncallOverride]:
    """Overrides not yet over (of one schedule, or all), oldest first."""
    query = select(OncallOverride).where(OncallOverride.ends_at > func.now())
    if schedule is not None:
        query = query.where(OncallOverride.schedule == schedule)
    async with db.session() as session:
        return (await session.scalars(query.order_by(OncallOverride.id))).all()


async def claim_handoff(
    db: Database, schedule: str, at: datetime, chat_id: str, people: Sequence[str]
) -> int | None:
    """Record the shift change of `schedule` at `at`; its id for the replica that recorded it
    first, None for every other (and for a repeat)."""
    statement = (
        insert(OncallHandoff)
        .values(schedule=schedule, handoff_at=at, chat_id=chat_id, people=list(people))
        .on_conflict_do_nothing(constraint="uq_oncall_handoffs_schedule_at")
        .returning(OncallHandoff.id)
    )
    async with db.session() as session:
        found: int | None = (await session.execute(statement)).scalar_one_or_none()
    return found


async def announced(db: Database, handoff_id: int, message_id: str) -> None:
    async with db.session() as session:
        await session.execute(
            update(OncallHandoff)
            .where(OncallHandoff.id == handoff_id)
            .values(message_id=message_id)
        )


async def last_handoff(db: Database, schedule: str) -> datetime | None:
    """The latest announced shift change of `schedule`."""
    async with db.session() as session:
        found: datetime | None = await session.scalar(
            select(func.max(OncallHandoff.handoff_at)).where(OncallHandoff.schedule == schedule)
        )
    return found
