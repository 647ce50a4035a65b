"""Model calls (`llm_turns`): recording one, and the tokens used by a conversation, an
incident, one model on an incident, and the day.

Usage::

    await record(db, LlmTurn(...))                      # accounting: not waited on the disk for
    used = await conversation_tokens(db, "oc_1/om_1")
    incident, day = await incident_and_day_tokens(db, 42, today)   # day None when not asked
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, text

from storage.database import Database
from storage.models import LlmTurn

_TOKENS = LlmTurn.prompt_tokens + LlmTurn.completion_tokens


async def record(db: Database, turn: LlmTurn) -> None:
    async with db.session() as session:
        # accounting, not state: a turn may be lost in a crash, never waits for the disk
        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        session.add(turn)


async def conversation_tokens(db: Database, conversation_id: str) -> int:
    """Tokens a conversation has used."""
    async with db.session() as session:
        used = await session.scalar(
            select(func.coalesce(func.sum(_TOKENS), 0)).where(
                LlmTurn.conversation_id == conversation_id
            )
        )
    return int(used or 0)


async def incident_and_day_tokens(
    db: Database, incident_id: int | None, today: datetime | None
) -> tuple[int, int | None]:
    """Tokens used by the incident (0 without one) and, when `today` is given, since then
    (None when not), in one query."""
    mine = LlmTurn.incident_id == (incident_id if incident_id is not None else -1)
    columns = [func.coalesce(func.sum(_TOKENS).filter(mine), 0)]
    condition = mine
    if today is not None:
        recent = LlmTurn.created_at >= today
        columns.append(func.coalesce(func.sum(_TOKENS).filter(recent), 0))
        condition = or_(mine, recent)
    async with db.session() as session:
        row = (await session.execute(select(*columns).where(condition))).one()
    return int(row[0] or 0), None if today is None else int(row[1] or 0)


async def model_tokens(db: Database, incident_id: int, provider: str, model: str) -> int:
    """Tokens one model (provider and name) has used for the incident."""
    async with db.session() as session:
        used = await session.scalar(
            select(func.coalesce(func.sum(_TOKENS), 0)).where(
                LlmTurn.incident_id == incident_id,
                LlmTurn.provider == provider,
                LlmTurn.model == model,
            )
        )
    return int(used or 0)
