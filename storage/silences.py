"""Silences: making one (in force at once, or a request another approver confirms), listing
those in force in a chat, ending one early, and counting what they held back (all audited).

row = await create(db, chat_id="oc_ops", matcher="alertname=X", terms=[...], reason="",
                   by="ou_bob", duration=timedelta(hours=2))
rows = await active(db, "oc_ops")
waiting = await pending(db, "oc_ops")      # requests awaiting another approver
ended = await end(db, 3, "oc_ops", by="ou_bob")   # None: no such active silence here
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.approvals import APPROVALS
from storage.database import Database
from storage.incidents import record_event
from storage.models import Approval, Silence

GATE = "silence"  # the gate (`approvals.gate`) of a silence request's confirmation


def _in_force(chat_id: str) -> list[ColumnElement[bool]]:
    return [
        Silence.status == "active",
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


async def pending(db: Database, chat_id: str) -> Sequence[Silence]:
    """The chat's requests still awaiting another approver's confirmation, oldest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(Silence)
            .where(Silence.status == "pending", Silence.chat_id == chat_id)
            .order_by(Silence.created_at)
        )
        return rows.all()


async def in_force(db: Database, chat_id: str | None = None) -> Sequence[Silence]:
    """The silences in force: of one chat (its own and global ones), or of every chat."""
    if chat_id is not None:
        return await active(db, chat_id)
    async with db.session() as session:
        rows = await session.scalars(
            select(Silence)
            .where(
                Silence.status == "active",
                Silence.ends_at > func.now(),
                Silence.cancelled_at.is_(None),
            )
            .order_by(Silence.ends_at)
        )
        return rows.all()


async def get(db: Database, silence_id: int) -> Silence | None:
    async with db.session() as session:
        return await session.get(Silence, silence_id)


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


async def create(
    db: Database,
    *,
    chat_id: str,
    matcher: str,
    terms: list[list[str]],
    reason: str,
    by: str,
    duration: timedelta,
    confirm: bool = False,
) -> Silence:
    """Make a silence: in force now, or (`confirm`) a `pending` request whose gate is
    `run_id`; it is in force only once another approver confirms it (`confirm_request`)."""
    now = datetime.now(UTC)
    async with db.session() as session:
        row = Silence(
            chat_id=chat_id,
            matcher=matcher,
            matchers={"terms": terms},
            reason=reason[:500],
            created_by=by,
            starts_at=now,
            ends_at=now + duration,
            status="pending" if confirm else "active",
            run_id=uuid.uuid4() if confirm else None,
        )
        session.add(row)
        await session.flush()
    await record_event(
        db,
        None,
        "silence.requested" if confirm else "silence.created",
        actor=by,
        message=matcher,
        data={"id": row.id, "chat": chat_id},
    )
    return row


async def by_run(db: Database, run_id: uuid.UUID | str) -> Silence | None:
    """The silence request whose confirmation gate is `run_id`."""
    async with db.session() as session:
        found: Silence | None = await session.scalar(
            select(Silence).where(Silence.run_id == uuid.UUID(str(run_id)))
        )
    return found


async def decide_request(
    db: Database, silence_id: int, *, approve: bool, by: str
) -> Silence | None:
    """Another approver confirmed (in force from now, for the length asked) or rejected a
    pending request; None when it is no longer pending. Audited."""
    values: dict[str, Any] = {"status": "active" if approve else "rejected", "decided_by": by}
    if approve:
        values |= {
            "starts_at": func.now(),
            "ends_at": func.now() + (Silence.ends_at - Silence.starts_at),
        }
    async with db.session() as session:
        row = await session.scalar(
            update(Silence)
            .where(Silence.id == silence_id, Silence.status == "pending")
            .values(**values)
            .returning(Silence)
        )
    if row is not None:
        await record_event(
            db,
            None,
            "silence.confirmed" if approve else "silence.rejected",
            actor=by,
            message=row.matcher,
            data={"id": row.id, "chat": row.chat_id},
        )
    return row


async def expire_requests(db: Database, ttl: timedelta, *, only: int | None = None) -> list[int]:
    """Requests nobody decided within `ttl` (or request `only`, now) expire, their gates with
    them; their ids."""
    due = Silence.id == only if only is not None else Silence.created_at <= func.now() - ttl
    async with db.session() as session:
        expired = (
            await session.scalars(
                update(Silence)
                .where(Silence.status == "pending", due)
                .values(status="expired")
                .returning(Silence.id)
            )
        ).all()
        gates = await session.execute(
            text(
                "UPDATE approvals SET status = 'expired', decided_at = now() "
                "WHERE status = 'pending' AND run_id IN "
                "(SELECT run_id FROM silences WHERE id = ANY(CAST(:ids AS bigint[]))) "
                "RETURNING id"
            ),
            {"ids": list(expired)},
        )
        closed = len(gates.all())
    if closed:
        APPROVALS.labels(GATE, "expired").inc(closed)
    return list(expired)


async def remember_card(db: Database, run_id: uuid.UUID, message_id: str) -> None:
    """The message showing a request's card, kept on its confirmation gate."""
    async with db.session() as session:
        await session.execute(
            text("UPDATE approvals SET card_message_id = :m WHERE run_id = :r AND gate = :g"),
            {"m": message_id, "r": run_id, "g": GATE},
        )


async def cards_of(db: Database, ids: Sequence[int]) -> list[tuple[Silence, str]]:
    """The requests `ids` with the message showing each one's card (those that have one)."""
    if not ids:
        return []
    async with db.session() as session:
        found = await session.execute(
            select(Silence, Approval.card_message_id)
            .join(Approval, Approval.run_id == Silence.run_id)
            .where(
                Silence.id.in_(list(ids)),
                Approval.gate == GATE,
                Approval.card_message_id.is_not(None),
            )
            .order_by(Silence.id)
        )
        return [(row, str(message)) for row, message in found.all()]


async def count_caught(session: AsyncSession, caught: Mapping[int, int]) -> None:
    """Add the alerts each silence held back (inside triage's transaction)."""
    for silence_id, count in caught.items():
        await session.execute(
            update(Silence).where(Silence.id == silence_id).values(caught=Silence.caught + count)
        )
