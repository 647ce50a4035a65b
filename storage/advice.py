"""What an applied hygiene suggestion writes besides a silence: a fingerprint's own dedupe
window. (A suggested silence is asked for as `/silence` asks, `bot.incidents.silencing.ask`:
the same rule decides when another approver must confirm it.)

Usage::

    await set_dedupe_window(db, "fp-1", 600, chat_id="oc_1", created_by="ou_1", reason="…")
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import DedupeOverride


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
