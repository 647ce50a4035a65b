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
    claimed = await claim(db, batch_id, ["gpt"], replica="r1", lease_seconds=70)
    if "gpt" in claimed:
        await finish(db, batch_id, "gpt", claimed["gpt"], Outcome("answered", answer={...}))
    ended = await conclude(db, batch_id, merge)   # what is left is timed_out; ended.merged
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    replica: str | None = None,
    lease_seconds: float = 0.0,
) -> tuple[int, dict[str, int]]:
    """The batch of `key`, made with one task per (member, provider, model) when it does not
    exist yet — pending, or already claimed by `replica` when one is given (one transaction
    fewer on the way to the models). (its id, {member: attempt} claimed here). A second call
    with the same key changes nothing and claims nothing."""
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
            return int(found), {}
        claimed: dict[str, Any] = {}
        if replica is not None:
            lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
            claimed = {
                "status": "running",
                "attempt": 1,
                "claimed_by": replica,
                "lease_until": lease,
            }
        rows = [
            {"batch_id": made, "member": name, "provider": provider, "model": model, **claimed}
            for name, provider, model in members
        ]
        if rows:
            await session.execute(insert(CouncilTask).values(rows))
        return int(made), ({name: 1 for name, _, _ in members} if replica is not None else {})


async def claim(
    db: Database, batch_id: int, members: Sequence[str], *, replica: str, lease_seconds: float
) -> dict[str, int]:
    """Take those of the members' tasks that are pending or whose lease ran out, in one
    statement: {member: the claim's attempt number}. A task another replica holds, or a final
    one, is not taken."""
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
    async with db.session() as session:
        rows = await session.execute(
            update(CouncilTask)
            .where(
                CouncilTask.batch_id == batch_id,
                CouncilTask.member.in_(list(members)),
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
            .returning(CouncilTask.member, CouncilTask.attempt)
        )
        return {str(member): int(attempt) for member, attempt in rows.all()}


async def renew(
    db: Database,
    batch_id: int,
    attempts: Mapping[str, int],
    *,
    replica: str,
    lease_seconds: float,
) -> int:
    """Extend the leases of the tasks this replica still runs (each under its claim's attempt):
    how many were extended. A replica that stops renewing (killed, frozen) loses its tasks
    `lease_seconds` later."""
    if not attempts:
        return 0
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
    mine = [
        and_(CouncilTask.member == member, CouncilTask.attempt == attempt)
        for member, attempt in attempts.items()
    ]
    async with db.session() as session:
        renewed = await session.execute(
            update(CouncilTask)
            .where(
                CouncilTask.batch_id == batch_id,
                CouncilTask.status == "running",
                CouncilTask.claimed_by == replica,
                or_(*mine),
            )
            .values(lease_until=lease)
            .returning(CouncilTask.id)
        )
        return len(renewed.all())


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


@dataclass(frozen=True)
class Concluded:
    """A batch's end: its merged answer, its tasks, and how many this call timed out."""

    merged: dict[str, Any]
    tasks: list[CouncilTask]
    timed_out: int


async def conclude(
    db: Database, batch_id: int, merge: Callable[[Sequence[CouncilTask]], Mapping[str, Any]]
) -> Concluded:
    """End the batch in one transaction: every task not yet final becomes `timed_out` (a late
    answer is then refused by `finish`), and `merge(tasks)` is stored as its merged answer
    unless another replica stored one first."""
    async with db.session() as session:
        ended = await session.execute(
            update(CouncilTask)
            .where(CouncilTask.batch_id == batch_id, CouncilTask.status.in_(("pending", "running")))
            .values(status="timed_out", finished_at=func.now(), lease_until=None)
            .returning(CouncilTask.id)
        )
        timed_out = len(ended.all())
        rows = list(
            await session.scalars(
                select(CouncilTask).where(CouncilTask.batch_id == batch_id).order_by(CouncilTask.id)
            )
        )
        merged = await session.scalar(
            update(CouncilBatch)
            .where(CouncilBatch.id == batch_id, CouncilBatch.status == "running")
            .values(status="done", merged=merge(rows), finished_at=func.now())
            .returning(CouncilBatch.merged)
        )
        if merged is None:
            merged = await session.scalar(
                select(CouncilBatch.merged).where(CouncilBatch.id == batch_id)
            )
    return Concluded(dict(merged or {}), rows, timed_out)


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


async def in_flight(db: Database) -> bool:
    """Whether a sweep may have work: a batch still running."""
    query = select(select(CouncilBatch.id).where(CouncilBatch.status == "running").exists())
    async with db.session() as session:
        return bool(await session.scalar(query))
