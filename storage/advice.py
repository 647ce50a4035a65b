"""What an applied hygiene suggestion writes: a silence, or a fingerprint's own dedupe window.

The silence row is the one `/silence` writes (matchers as parsed by `workflows.silences`, with
its `silence.created` audit event), so triage treats both alike.

Usage::

    silence_id = await create_silence(db, chat_id="oc_1", matcher="alertname=X", terms=[...],
                                      ends_at=until, reason="report", created_by="ou_1")
    await set_dedupe_window(db, "fp-1", 600, chat_id="oc_1", created_by="ou_1", reason="…")
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.incidents import record_event
from storage.models import DedupeOverride, Silence


async def create_silence(
    db: Database,
    *,
    chat_id: str,
    matcher: str,
    terms: list[list[str]],
    ends_at: datetime,
    reason: str,
    created_by: str,
) -> int:
    async with db.session() as session:
        row = Silence(
            chat_id=chat_id,
            matcher=matcher,
            matchers={"terms": terms},
            reason=reason[:500],
            created_by=created_by,
            ends_at=ends_at,
        )
        session.add(row)
        await session.flush()
        silence_id = int(row.id)
    await record_event(
        db,
        None,
        "silence.created",
        actor=created_by,
        message=matcher,
        data={"id": silence_id, "chat": chat_id},
    )
    return silence_id


async def set_dedupe_window(
    db: Database, fingerprint: str, minutes: int, *, chat_id: str, created_by: str, reason: str
) -> None:
    """Set (or replace) the fingerprint's own dedupe window."""
    values = {"minutes": minutes, "chat_id": chat_id, "created_by": created_by, "reason": reason}
    statement = (
        insert(DedupeOverride)
        .values(fingerprint=fingerprint, **values)
        .on_conflict_do_update(
            constraint="uq_dedupe_overrides_fingerprint", set_={**values, "updated_at": func.now()}
        )
    )
    async with db.session() as session:
        await session.execute(statement)
