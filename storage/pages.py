"""Paging steps: the durable timers of incident escalation (`pages` rows with a due time).

`plan` writes every step of an incident's policy when it opens (idempotent);
`plan_escalation` the steps its escalation adds, due from the escalation (once). Any replica calls
`claim_due`: one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING` moves due
rows to `firing`, so two replicas never take the same row; a step whose incident has no card yet
waits for it (its urgent notices go on the card), at most `CARD_GRACE`. `finish` records what
the step did. A row left `firing` by a replica that died is taken again after `STALE_AFTER` (at most
`MAX_ATTEMPTS` times): a page may then repeat, it is never lost. `cancel` ends the pending steps
of an acknowledged or resolved incident.

    await plan(db, incident_id, "default", [(1, 1, 0.0), (2, 2, 60.0)])
    for page in await claim_due(db, "replica-a"):
        ...  # notify
        await finish(db, page.id, {"channel": "chat", "people": ["ou_bob"]})
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import Incident, Page

STALE_AFTER = timedelta(minutes=2)  # a `firing` row older than this lost its replica
MAX_ATTEMPTS = 3
CARD_GRACE = timedelta(seconds=10)
BATCH = 200


async def plan(
    db: Database, incident_id: int, policy: str, steps: Sequence[tuple[int, int, float]]
) -> int:
    """Write the incident's steps `(number, level, seconds after it opened)`; a step written
    before is kept as it is. Returns how many were new."""
    async with db.session() as session:
        opened = await session.scalar(select(Incident.created_at).where(Incident.id == incident_id))
        if opened is None or not steps:
            return 0
        rows = [
            {
                "incident_id": incident_id,
                "policy": policy,
                "step": number,
                "level": level,
                "due_at": opened + timedelta(seconds=delay),
            }
            for number, level, delay in steps
        ]
        result = await session.execute(
            insert(Page)
            .values(rows)
            .on_conflict_do_nothing(constraint="uq_pages_incident_step")
            .returning(Page.id)
        )
        return len(result.all())


async def plan_escalation(
    db: Database, incident_id: int, policy: str, steps: Sequence[tuple[int, float]]
) -> int:
    """Write the steps `(level, seconds after the escalation)` its escalation adds to an
    incident's paging, numbered after its earlier steps and due from `escalated_at`; once per
    incident (the row lock keeps a second writer out; a replayed call writes nothing).
    Returns how many were written."""
    async with db.session() as session:
        escalated = await session.scalar(
            select(Incident.escalated_at).where(Incident.id == incident_id).with_for_update()
        )
        if escalated is None or not steps:
            return 0
        mine = Page.incident_id == incident_id
        if await session.scalar(select(exists().where(mine, Page.after_escalation))):
            return 0
        last = await session.scalar(select(func.coalesce(func.max(Page.step), 0)).where(mine))
        rows = [
            {
                "incident_id": incident_id,
                "policy": policy,
                "step": int(last or 0) + n,
                "level": level,
                "due_at": escalated + timedelta(seconds=delay),
                "after_escalation": True,
            }
            for n, (level, delay) in enumerate(steps, 1)
        ]
        await session.execute(insert(Page).values(rows))
        repaged = func.coalesce(Incident.escalation, text("'{}'::jsonb")).op("||")(
            text("""'{"repaged": true}'::jsonb""")
        )
        await session.execute(
            update(Incident).where(Incident.id == incident_id).values(escalation=repaged)
        )
        return len(rows)


async def claim_due(db: Database, replica: str, limit: int = BATCH) -> list[Page]:
    """Take the steps due now (and stale `firing` ones), oldest due first."""
    stale = func.now() - STALE_AFTER
    # an urgent notice goes on the incident's card: a step waits for the card to be sent
    # (a storm incident has none: after CARD_GRACE it fires without)
    carded = exists().where(
        Incident.id == Page.incident_id,
        or_(Incident.card_message_id.is_not(None), Incident.created_at < func.now() - CARD_GRACE),
    )
    chosen = (
        select(Page.id)
        .where(
            or_(
                and_(Page.status == "pending", Page.due_at <= func.now(), carded),
                and_(
                    Page.status == "firing",
                    Page.claimed_at < stale,
                    Page.attempts < MAX_ATTEMPTS,
                ),
            )
        )
        .order_by(Page.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(Page)
        .where(Page.id.in_(chosen.scalar_subquery()))
        .values(
            status="firing",
            claimed_by=replica,
            claimed_at=func.now(),
            attempts=Page.attempts + 1,
        )
        .returning(Page)
    )
    async with db.session() as session:
        rows = list((await session.scalars(statement)).all())
    return sorted(rows, key=lambda page: (page.due_at, page.step))


async def finish(
    db: Database, page_id: int, outcome: dict[str, Any], *, fired: bool = True
) -> None:
    """Record what a claimed step did (`fired` False: it was no longer needed)."""
    async with db.session() as session:
        await session.execute(
            update(Page)
            .where(Page.id == page_id, Page.status == "firing")
            .values(status="done" if fired else "cancelled", fired_at=func.now(), outcome=outcome)
        )


async def cancel(db: Database, incident_id: int) -> int:
    """End the incident's pending steps; how many there were."""
    async with db.session() as session:
        result = await session.execute(
            update(Page)
            .where(Page.incident_id == incident_id, Page.status == "pending")
            .values(status="cancelled")
            .returning(Page.id)
        )
        return len(result.all())


async def of_incident(db: Database, incident_id: int) -> Sequence[Page]:
    """The incident's steps in order (what its card shows)."""
    async with db.session() as session:
        rows = await session.scalars(
            select(Page).where(Page.incident_id == incident_id).order_by(Page.step)
        )
        return rows.all()


async def next_due(db: Database) -> datetime | None:
    """When the earliest pending step is due (the paging loop sleeps until then)."""
    async with db.session() as session:
        found: datetime | None = await session.scalar(
            select(func.min(Page.due_at)).where(Page.status == "pending")
        )
    return found
