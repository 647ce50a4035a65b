"""The statements of one triage transaction (`workflows.triage`): lock a delivery's
fingerprints, load their active incidents, fold, open, resolve and record its alerts.

Every function takes the triage transaction's session, so a delivery is counted, folded and
opened all or nothing::

    async with db.session() as session:
        if not await first_time(session, delivery):
            return  # a replay
        current = await lock_and_load(session, "oc_ops", ["fp1", "fp2"])
        await fold(session, {current["fp1"].id: 3}, {current["fp1"].id: "disk 91%"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.incidents import UNRESOLVED
from storage.models import Alert, DedupeOverride, Incident, IncidentEvent, TriagedDelivery

ALERTS_TABLE = cast(Table, Alert.__table__)
# every fold of one delivery in one statement; the card shows the latest alert's summary (its
# current value), not the first one's
_FOLD = text(
    "UPDATE incidents AS i SET alert_count = i.alert_count + f.n, last_seen_at = now(), "
    "summary = COALESCE(NULLIF(f.s, ''), i.summary), "
    "updated_at = now() FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id, "
    "unnest(CAST(:counts AS int[])) AS n, unnest(CAST(:summaries AS text[])) AS s) AS f "
    "WHERE i.id = f.id"
)
_LOCK_FINGERPRINTS = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtext(:chat || '/' || f) AS k "
    "FROM unnest(CAST(:fps AS text[])) AS f ORDER BY k) AS keys"
)
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtext(:key))")


async def first_time(session: AsyncSession, delivery: str) -> bool:
    """Record `delivery` in the triage transaction; False when it was recorded before (a
    concurrent replay waits for the first transaction and then sees it)."""
    recorded = await session.execute(
        upsert(TriagedDelivery)
        .values(delivery=delivery)
        .on_conflict_do_nothing(index_elements=["delivery"])
        .returning(TriagedDelivery.delivery)
    )
    return recorded.scalar_one_or_none() is not None


async def lock_and_load(
    session: AsyncSession, chat_id: str, fingerprints: Sequence[str]
) -> dict[str, Incident]:
    """Lock every fingerprint of the delivery in its chat (in one order, so deliveries never
    deadlock), then load their active incidents in that chat, locked for update."""
    if not fingerprints:
        return {}
    await session.execute(_LOCK_FINGERPRINTS, {"fps": list(fingerprints), "chat": chat_id})
    found = await session.scalars(
        select(Incident)
        .where(
            Incident.fingerprint.in_(fingerprints),
            Incident.chat_id == chat_id,
            Incident.status.in_(UNRESOLVED),
        )
        .order_by(Incident.id)
        .with_for_update()
    )
    return {incident.fingerprint: incident for incident in found}


async def dedupe_windows(
    session: AsyncSession, fingerprints: Sequence[str]
) -> dict[str, timedelta]:
    """The fingerprints' own dedupe windows (set from the hygiene report), where set."""
    if not fingerprints:
        return {}
    rows = await session.execute(
        select(DedupeOverride.fingerprint, DedupeOverride.minutes).where(
            DedupeOverride.fingerprint.in_(fingerprints)
        )
    )
    return {fp: timedelta(minutes=minutes) for fp, minutes in rows.all()}


async def openings_within(session: AsyncSession, chat_id: str, window: timedelta) -> int:
    """How many incidents opened in the chat within `window` (up to now), counted under the
    chat's storm lock: one opening at a time per chat, so concurrent deliveries agree on the
    count (taken after the fingerprint locks: whoever holds it holds all of its own already)."""
    await session.execute(_LOCK_KEY, {"key": f"storm:{chat_id}"})
    since = datetime.now(UTC) - window
    recent = await session.scalar(
        select(func.count())
        .select_from(Incident)
        .where(Incident.chat_id == chat_id, Incident.created_at > since)
    )
    return int(recent or 0)


async def open_incident(session: AsyncSession, event: Mapping[str, Any], **fields: Any) -> Incident:
    """Insert an incident (`fields` are its columns) and its `incident.opened` event (`event`
    is the event's data); the incident comes back with its id."""
    created = Incident(**fields)
    session.add(created)
    await session.flush()
    session.add(
        IncidentEvent(
            incident_id=created.id,
            kind="incident.opened",
            message=created.title,
            data=dict(event),
        )
    )
    return created


def resolve_by_alert(session: AsyncSession, incident: Incident, title: str, source: str) -> None:
    """Mark a loaded (locked) incident resolved by its alert, with its audit event; written
    when the triage transaction commits."""
    incident.status = "resolved"
    incident.resolved_at = func.now()
    incident.resolved_by = "alert"
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            kind="incident.resolved_by_alert",
            message=title,
            data={"source": source},
        )
    )


async def fold(
    session: AsyncSession, counts: Mapping[int, int], summaries: Mapping[int, str]
) -> None:
    """Add `counts[id]` alerts to each incident, seen now, showing its latest summary."""
    if not counts:
        return
    await session.execute(
        _FOLD,
        {
            "ids": list(counts),
            "counts": list(counts.values()),
            "summaries": [summaries.get(incident_id, "") for incident_id in counts],
        },
    )


async def record_alerts(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert the delivery's alert rows (Core: no ORM bookkeeping)."""
    if rows:
        await session.execute(insert(ALERTS_TABLE), list(rows))
