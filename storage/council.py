"""Council batches and their tasks: opened once per key, each task claimed under a lease and
finished exactly once.

A task is claimed by one `UPDATE … WHERE status = 'pending' OR (status = 'running' AND the lease
ran out) RETURNING attempt`: Postgres lets exactly one replica win it. The claim's `attempt`
fences the result — a replica that lost its lease (killed, paused) and comes back late finds its
`finish` refused, so a task counts once whoever ran it. Leases are compared with the database's
clock, never a replica's.

Usage::

    batch_id = await open_batch(db, key="diagnosis:…", purpose="diagnosis", incident_id=7,
                                brief={...}, deadline_at=when,
                                members=[("gpt", "openai", "gpt-4o")])
    attempt = await claim(db, batch_id, "gpt", replica="r1", lease_seconds=70)
    if attempt is not None:
        await finish(db, batch_id, "gpt", attempt, Outcome("answered", answer={...}))
    await expire(db, batch_id)          # the deadline passed: what is left is timed_out
    merged = await close(db, batch_id, merged={...})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import CouncilBatch, CouncilTask
from storage.statuses import CouncilPurpose, CouncilTaskStatus

FINAL: tuple[CouncilTaskStatus, ...] = ("answered", "failed", "timed_out")


@dataclass(frozen=True)
class Outcome:
    """What a task's model call came to."""

    status: CouncilTaskStatus
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    answer: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


async def open_batch(
    db: Database,
    *,
    key: str,
    purpose: CouncilPurpose,
    incident_id: int | None,
    brief: dict[str, Any],
    deadline_at: datetime,
    members: Sequence[tuple[str, str, str]],
) -> int:
    """The batch of `key` (made with one pending task per (member, provider, model) when it
    does not exist yet): its id. A second call with the same key changes nothing."""
    async with db.session() as session:
        made = await session.scalar(
            insert(CouncilBatch)
            .values(
                key=key,
                purpose=purpose,
                incident_id=incident_id,
                brief=brief,
                deadline_at=deadline_at,
            )
            .on_conflict_do_nothing(constraint="uq_council_batches_key")
            .returning(CouncilBatch.id)
        )
        if made is None:
            found = await session.scalar(select(CouncilBatch.id).where(CouncilBatch.key == key))
            assert found is not None
            return int(found)
        rows = [
            {"batch_id": made, "member": name, "provider": provider, "model": model}
            for name, provider, model in members
        ]
        if rows:
            await session.execute(insert(CouncilTask).values(rows).on_conflict_do_nothing())
        return int(made)


async def claim(
    db: Database, batch_id: int, member: str, *, replica: str, lease_seconds: float
) -> int | None:
    """Take the member's task when it is pending or its lease ran out: the claim's attempt
    number, or None when another replica holds it or it is final."""
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
    async with db.session() as session:
        attempt = await session.scalar(
            update(CouncilTask)
            .where(
                CouncilTask.batch_id == batch_id,
                CouncilTask.member == member,
                or_(
                    CouncilTask.status == "pending",
                    and_(CouncilTask.status == "running", CouncilTask.lease_until < func.now()),
                ),
            )
            .values(
                status="running",
                attempt=CouncilTask.attempt + 1,
                claimed_by=replica,
                lease_until=lease,
            )
            .returning(CouncilTask.attempt)
        )
    return None if attempt is None else int(attempt)


async def finish(db: Database, batch_id: int, member: str, attempt: int, outcome: Outcome) -> bool:
    """Record the result of claim `attempt`; False (nothing changes) when the task was claimed
    again since, or already ended (the deadline passed)."""
    async with db.session() as session:
        done = await session.scalar(
            update(CouncilTask)
            .where(
                CouncilTask.batch_id == batch_id,
                CouncilTask.member == member,
                CouncilTask.attempt == attempt,
                CouncilTask.status == "running",
            )
            .values(
                status=outcome.status,
                latency_ms=outcome.latency_ms,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                cost_usd=Decimal(f"{outcome.cost_usd:.6f}"),
                answer=outcome.answer,
                error=outcome.error,
                finished_at=func.now(),
                lease_until=None,
            )
            .returning(CouncilTask.id)
        )
    return done is not None


async def expire(db: Database, batch_id: int) -> int:
    """The deadline passed: every task not yet final becomes `timed_out` (a late answer is then
    refused by `finish`). How many."""
    async with db.session() as session:
        ended = await session.execute(
            update(CouncilTask)
            .where(CouncilTask.batch_id == batch_id, CouncilTask.status.in_(("pending", "running")))
            .values(status="timed_out", finished_at=func.now(), lease_until=None)
            .returning(CouncilTask.id)
        )
        return len(ended.all())


async def tasks(db: Database, batch_id: int) -> list[CouncilTask]:
    """The batch's tasks, in the order the members were configured."""
    async with db.session() as session:
        rows = await session.scalars(
            select(CouncilTask).where(CouncilTask.batch_id == batch_id).order_by(CouncilTask.id)
        )
        return list(rows)


async def batch(db: Database, batch_id: int) -> CouncilBatch:
    async with db.session() as session:
        row = await session.get(CouncilBatch, batch_id)
        assert row is not None
        return row


async def close(db: Database, batch_id: int, merged: dict[str, Any]) -> dict[str, Any]:
    """Store the merged answer once: the batch's merged answer (the first one stored wins)."""
    async with db.session() as session:
        await session.execute(
            update(CouncilBatch)
            .where(CouncilBatch.id == batch_id, CouncilBatch.status == "running")
            .values(status="done", merged=merged, finished_at=func.now())
        )
        stored = await session.scalar(
            select(CouncilBatch.merged).where(CouncilBatch.id == batch_id)
        )
    return dict(stored or {})


async def stale(db: Database, *, limit: int = 20) -> list[int]:
    """Running batches that need a hand: a task whose lease ran out, or a deadline that passed
    with tasks still open (their replica is gone). Their ids."""
    async with db.session() as session:
        rows = await session.scalars(
            select(CouncilBatch.id)
            .join(CouncilTask, CouncilTask.batch_id == CouncilBatch.id)
            .where(
                CouncilBatch.status == "running",
                or_(
                    and_(CouncilTask.status == "running", CouncilTask.lease_until < func.now()),
                    CouncilBatch.deadline_at < func.now(),
                ),
            )
            .distinct()
            .order_by(CouncilBatch.id)
            .limit(limit)
        )
        return [int(row) for row in rows]
