"""The durable inbox: every inbound event is committed here before it is acknowledged.

`record` stores an event once (unique `event_id`; message events also unique `message_id`, so a
redelivery under a new event id is still a duplicate). Workers `claim` the oldest pending row with
`FOR UPDATE SKIP LOCKED` inside a transaction that stays open while the row is handled: if the
process dies mid-way the transaction aborts, the row is pending again and the next worker (after
a restart, or on another replica) handles it, once.

Usage::

    row_id = await record(db, event_id="e1", message_id="om_1", event_type="im.message.receive_v1",
                          payload=raw_dict, source="lark")        # None when a duplicate
    async with claim(db, worker="host-1") as row:                  # None when nothing is pending
        if row is not None:
            ...handle...
            row.status = "done"
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from storage.database import Database
from storage.jsontext import dumps
from storage.models import InboundEvent
from storage.statuses import InboundStatus

ALERT_PREFIX = "alert."  # the event type of a webhook delivery: alert.<source>


async def record(
    db: Database,
    *,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    message_id: str | None = None,
    source: str = "lark",
    trace_id: str | None = None,
    status: InboundStatus = "pending",
    error: str | None = None,
) -> int | None:
    """Insert the event; returns its row id, or None when it was already recorded.

    One statement in a transaction of its own (`Database.autocommit`): every delivery is recorded
    before it is answered. Sent again on a connection the server closed, it may find the row
    its first sending stored: then None too, and the event is recorded all the same."""
    row_id = await db.autocommit.fetchval(
        RECORD, event_id, message_id, event_type, dumps(payload), source, trace_id, status, error
    )
    return int(row_id) if row_id is not None else None


RECORD = """
    INSERT INTO inbound_events
        (event_id, message_id, event_type, payload, source, trace_id, status, error)
    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
    ON CONFLICT DO NOTHING
    RETURNING id
"""


@asynccontextmanager
async def claim(db: Database, *, worker: str) -> AsyncIterator[InboundEvent | None]:
    """Lock the oldest pending event for the duration of the block.

    Set `status` (and `error`) on the yielded row; leaving the block commits. When the block
    raises, the transaction rolls back and the row stays pending for another try.
    """
    async with claim_batch(db, worker=worker, alerts=1) as rows:
        yield rows[0] if rows else None


@asynccontextmanager
async def claim_batch(
    db: Database, *, worker: str, alerts: int
) -> AsyncIterator[list[InboundEvent]]:
    """Lock the oldest pending event, and when it is an alert delivery (`alert.<source>`) up to
    `alerts - 1` more pending alert deliveries for the same chat with it (oldest first; rows
    another worker holds are skipped), for the duration of the block: an empty list when
    nothing is pending. Set each row's `status` as with `claim`.

    One chat a batch: a batch's triage locks every fingerprint it touches, so a new problem
    claimed together with a storm's repeats waited for the batches folding those repeats
    (seconds at 500 alerts/s); alone, or with its own chat's deliveries, it does not."""
    async with db.session() as session:
        oldest = (
            select(InboundEvent)
            .where(InboundEvent.status == "pending")
            .order_by(InboundEvent.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        first = (await session.execute(oldest)).scalar_one_or_none()
        if first is None:
            yield []
            return
        rows = [first]
        if alerts > 1 and first.event_type.startswith(ALERT_PREFIX):
            more = (
                select(InboundEvent)
                .where(
                    InboundEvent.status == "pending",
                    InboundEvent.event_type.startswith(ALERT_PREFIX),
                    InboundEvent.id > first.id,
                    InboundEvent.payload["chat_id"].astext == str(first.payload.get("chat_id")),
                )
                .order_by(InboundEvent.id)
                .limit(alerts - 1)
                .with_for_update(skip_locked=True)
            )
            rows += (await session.scalars(more)).all()
        for row in rows:  # written back below in one statement, not in one UPDATE each
            session.expunge(row)
            row.attempts += 1
            row.claimed_by = worker
        yield rows
        await session.execute(
            WRITE_BACK,
            {
                "worker": worker,
                "ids": [row.id for row in rows],
                "statuses": [row.status for row in rows],
                "errors": [row.error for row in rows],
            },
        )


# the claim's outcome for every row claimed together; handled_at: clock_timestamp(), as now()
# would be the claim's start
WRITE_BACK = text("""
    UPDATE inbound_events AS event
    SET attempts = event.attempts + 1, claimed_by = :worker, claimed_at = now(),
        status = claimed.status, error = claimed.error,
        handled_at = CASE WHEN claimed.status IN ('done', 'failed', 'ignored')
                          THEN clock_timestamp() END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:errors AS text[]))
        AS claimed (id, status, error)
    WHERE event.id = claimed.id
""")


async def exists(db: Database, event_id: str) -> bool:
    async with db.session() as session:
        query = select(InboundEvent.id).where(InboundEvent.event_id == event_id)
        found = await session.scalar(query)
    return found is not None


async def pending_count(db: Database) -> int:
    async with db.session() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM inbound_events WHERE status = 'pending'")
        )
    return int(count or 0)


async def by_message(db: Database, message_id: str) -> tuple[Any, datetime] | None:
    """The recorded payload of message `message_id` and when it came, or None."""
    async with db.session() as session:
        found = (
            await session.execute(
                select(InboundEvent.payload, InboundEvent.created_at).where(
                    InboundEvent.message_id == message_id
                )
            )
        ).first()
    return None if found is None else (found[0], found[1])
