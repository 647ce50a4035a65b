"""The statements of one triage transaction (`workflows.triage`): replay marks, locks, the
active incidents, folds, openings, resolutions and alert rows, each one round trip for a whole
batch of deliveries.

Every function takes the triage transaction's session, so a batch is counted, folded and
opened all or nothing::

    async with db.session() as session:
        fresh = await first_times(session, ["webhook:ab12", "webhook:cd34"])   # not replays
        current = await lock_and_load(session, [("oc_ops", "fp-1"), ("oc_ops", "fp-2")])
        await fold(session, {7: (3, "value 0.93")})       # incident 7: +3 alerts, new summary
        await record_alerts(session, rows)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, exists, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.incidents import UNRESOLVED
from storage.jsontext import dumps
from storage.models import Alert, DedupeOverride, Incident, IncidentEvent, TriagedDelivery

ALERTS_TABLE = cast(Table, Alert.__table__)
ALERT_COLUMNS = (
    "incident_id",
    "source",
    "fingerprint",
    "status",
    "title",
    "severity",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "raw",
)
JSON_COLUMNS = frozenset({"labels", "annotations", "raw"})
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
_LOCK_FINGERPRINTS = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext(c || '/' || f) AS k "
    "FROM unnest(CAST(:chats AS text[]), CAST(:fps AS text[])) AS t(c, f) ORDER BY k) AS keys"
)
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtext(:key))")


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


async def lock_and_load(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Incident]:
    """Lock every (chat, fingerprint) of the batch (in one order, so batches never deadlock),
    then load their active incidents, locked against other writers (FOR NO KEY UPDATE):
    (chat, fingerprint) -> incident (the newest active one of a fingerprint wins)."""
    if not keys:
        return {}
    await session.execute(
        _LOCK_FINGERPRINTS,
        {"chats": [chat for chat, _ in keys], "fps": [fp for _, fp in keys]},
    )
    found = await session.scalars(
        select(Incident)
        .where(
            tuple_(Incident.chat_id, Incident.fingerprint).in_(list(keys)),
            Incident.status.in_(UNRESOLVED),
        )
        .order_by(Incident.id)
        # not FOR UPDATE: that lock also holds up every insert that references the incident
        # (its alerts' and events' foreign key checks take KEY SHARE), so a run writing its
        # incident's events waited for whole storm batches
        .with_for_update(key_share=True)
    )
    return {(incident.chat_id or "", incident.fingerprint): incident for incident in found}


async def lock_services(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Incident]:
    """Lock every (chat, service) of the batch (after its fingerprints, in one order) and load
    the newest active incident of each that is not part of a storm: the one an alert of that
    service with no incident of its own joins (`incidents.join_by_service`)."""
    if not keys:
        return {}
    await session.execute(
        _LOCK_FINGERPRINTS,
        {"chats": [chat for chat, _ in keys], "fps": [f"service:{s}" for _, s in keys]},
    )
    found = await session.scalars(
        select(Incident)
        .where(
            tuple_(Incident.chat_id, Incident.service).in_(list(keys)),
            Incident.status.in_(UNRESOLVED),
            Incident.storm.is_(False),
        )
        .order_by(Incident.id)
        .with_for_update(key_share=True)
    )
    return {(incident.chat_id or "", incident.service or ""): incident for incident in found}


async def joined(session: AsyncSession, chat_id: str, fingerprint: str) -> Incident | None:
    """The active incident of `chat_id` that alerts of `fingerprint` joined (its own are found
    by `lock_and_load`), locked like those."""
    found: Incident | None = await session.scalar(
        select(Incident)
        .join(Alert, Alert.incident_id == Incident.id)
        .where(
            Alert.fingerprint == fingerprint,
            Incident.chat_id == chat_id,
            Incident.status.in_(UNRESOLVED),
        )
        .order_by(Alert.id.desc())
        .limit(1)
        .with_for_update(key_share=True, of=Incident)
    )
    return found


async def others_firing(session: AsyncSession, incident_id: int, fingerprint: str) -> bool:
    """Whether an alert of the incident other than `fingerprint` still fires (its latest
    notification says so)."""
    later = aliased(Alert)
    newer = exists().where(
        later.incident_id == Alert.incident_id,
        later.fingerprint == Alert.fingerprint,
        later.id > Alert.id,
    )
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Alert.incident_id == incident_id,
                    Alert.fingerprint != fingerprint,
                    Alert.status == "firing",
                    ~newer,
                )
            )
        )
    )


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


def note_join(session: AsyncSession, incident: Incident, title: str, source: str) -> None:
    """An alert of the incident's service joined it (its audit event; written when the
    triage transaction commits)."""
    session.add(
        IncidentEvent(
            incident_id=incident.id, kind="alert.joined", message=title, data={"source": source}
        )
    )


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


async def fold(session: AsyncSession, folds: Mapping[int, tuple[int, str]]) -> None:
    """Incident id -> (alerts folded into it, its latest non-empty summary or ""): each gets
    the alerts added, seen now, showing that summary."""
    if folds:
        await session.execute(
            _FOLD,
            {
                "ids": list(folds),
                "counts": [n for n, _ in folds.values()],
                "summaries": [summary for _, summary in folds.values()],
            },
        )


async def record_alerts(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """Copy the batch's alert rows in (`COPY`, in the triage transaction): one statement for
    the whole batch, where an `INSERT` of many rows was one execution per row (the triage
    holds its fingerprints' locks meanwhile)."""
    if not rows:
        return
    connection = await (await session.connection()).get_raw_connection()
    driver: Any = connection.driver_connection  # the asyncpg connection of the session
    await driver.copy_records_to_table(
        ALERTS_TABLE.name,
        columns=ALERT_COLUMNS,
        records=[
            tuple(
                dumps(row[column]) if column in JSON_COLUMNS else row[column]
                for column in ALERT_COLUMNS
            )
            for row in rows
        ],
    )
