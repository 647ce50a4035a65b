"""The statements of one triage transaction (`workflows.triage`): locks, replay marks, folds and
alert rows, each one round trip for a whole batch of deliveries.

    async with db.session() as session:
        fresh = await first_times(session, ["webhook:ab12", "webhook:cd34"])   # not replays
        await lock_fingerprints(session, [("oc_ops", "fp-1"), ("oc_ops", "fp-2")])
        await fold(session, {7: (3, "value 0.93")})       # incident 7: +3 alerts, new summary
        await insert_rows(session, rows)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import cast

from sqlalchemy import Table, insert, text
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Alert, TriagedDelivery

ALERTS_TABLE = cast(Table, Alert.__table__)
# every fold of a batch in one statement; the card shows the latest alert's summary (its current
# value), not the first one's
_FOLD = text(
    "UPDATE incidents AS i SET alert_count = i.alert_count + f.n, last_seen_at = now(), "
    "summary = COALESCE(NULLIF(f.s, ''), i.summary), "
    "updated_at = now() FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id, "
    "unnest(CAST(:counts AS int[])) AS n, unnest(CAST(:summaries AS text[])) AS s) AS f "
    "WHERE i.id = f.id"
)
# every (chat, fingerprint) of a batch, in one order (the keys'), so batches never deadlock
_LOCK = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext(c || '/' || f) AS k "
    "FROM unnest(CAST(:chats AS text[]), CAST(:fps AS text[])) AS t(c, f) ORDER BY k) AS keys"
)


async def first_times(session: AsyncSession, deliveries: Collection[str]) -> set[str]:
    """Record `deliveries` in the triage transaction; returns those recorded now (the others
    were counted before: replays). A concurrent replay waits for the first transaction, then
    sees it."""
    if not deliveries:
        return set()
    recorded = await session.execute(
        upsert(TriagedDelivery)
        .values([{"delivery": d} for d in deliveries])
        .on_conflict_do_nothing(index_elements=["delivery"])
        .returning(TriagedDelivery.delivery)
    )
    return set(recorded.scalars())


async def lock_fingerprints(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> None:
    """Hold every (chat, fingerprint) of the batch until the transaction ends."""
    if keys:
        await session.execute(
            _LOCK, {"chats": [chat for chat, _ in keys], "fps": [fp for _, fp in keys]}
        )


async def lock_storm(session: AsyncSession, chat_id: str) -> None:
    """One opening at a time per chat, so concurrent batches agree on the storm count (taken
    after the fingerprint locks, chats in sorted order)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"storm:{chat_id}"}
    )


async def fold(session: AsyncSession, folds: Mapping[int, tuple[int, str]]) -> None:
    """Incident id -> (alerts folded into it, its latest non-empty summary or "")."""
    if folds:
        await session.execute(
            _FOLD,
            {
                "ids": list(folds),
                "counts": [n for n, _ in folds.values()],
                "summaries": [s for _, s in folds.values()],
            },
        )


async def insert_rows(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """The alerts themselves (Core: no ORM bookkeeping)."""
    if rows:
        await session.execute(insert(ALERTS_TABLE), rows)
