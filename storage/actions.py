"""Plugin runs asked for outside an incident (`/run`, a scheduled fix, the chat agent's
proposal): the `actions` rows their remediation runs keep.

Usage::

    row = await create(db, chat_id="oc_1", requester="ou_1", plugin="pg_vacuum", params={...})
    stored = await record_decision(db, row.id, decision, risk="medium")  # once per action
    await update(db, row.id, status="running")
    for action_id, run_id in await stranded(db, stale_after=5.0, recent=60.0): ...
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select
from sqlalchemy import update as sql_update

from storage.database import Database
from storage.models import Action, Approval
from storage.statuses import ActionStatus, Risk

# an action still on its way; its run drives it further
UNFINISHED: tuple[ActionStatus, ...] = ("pending", "running")


async def create(
    db: Database,
    *,
    chat_id: str | None,
    requester: str,
    plugin: str,
    params: Mapping[str, Any],
    run_id: uuid.UUID | None = None,
) -> Action:
    """A new action, not judged yet (its run's first step asks the policy)."""
    action = Action(
        run_id=run_id or uuid.uuid4(),
        chat_id=chat_id,
        requester=requester,
        plugin=plugin,
        params=dict(params),  # what runs; cards and the audit show it redacted
        risk="high",  # until the policy has judged it
        decision={},
        status="pending",
    )
    async with db.session() as session:
        session.add(action)
        await session.flush()
        await session.refresh(action)
    return action


async def get(db: Database, action_id: int) -> Action | None:
    async with db.session() as session:
        return await session.get(Action, action_id)


async def by_run(db: Database, run_id: uuid.UUID | str) -> Action | None:
    run = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id)
    async with db.session() as session:
        found: Action | None = await session.scalar(select(Action).where(Action.run_id == run))
        return found


async def gate_of(db: Database, action: Action, gate: str) -> Approval | None:
    """The action's approval gate, if it has one."""
    async with db.session() as session:
        found: Approval | None = await session.scalar(
            select(Approval).where(Approval.run_id == action.run_id, Approval.gate == gate)
        )
        return found


async def record_decision(
    db: Database, action_id: int, decision: Mapping[str, Any], *, risk: Risk
) -> tuple[dict[str, Any], bool]:
    """Keep the policy's decision on an action the first time it is judged: (the decision as
    stored, True when this call stored it). A replayed judgement keeps the first one."""
    async with db.session() as session:
        written = await session.execute(
            sql_update(Action)
            .where(Action.id == action_id, Action.decision == {})
            .values(decision=dict(decision), risk=risk)
            .returning(Action.id)
        )
        fresh = written.scalar_one_or_none() is not None
        stored = await session.scalar(select(Action.decision).where(Action.id == action_id))
    return dict(stored or {}), fresh


async def update(db: Database, action_id: int, **values: Any) -> None:
    async with db.session() as session:
        await session.execute(sql_update(Action).where(Action.id == action_id).values(**values))


async def finish(db: Database, action_id: int, status: ActionStatus, **values: Any) -> None:
    await update(db, action_id, status=status, finished_at=func.now(), **values)


async def stranded(
    db: Database, *, stale_after: float, recent: float, gate: str
) -> list[tuple[int, uuid.UUID]]:
    """Unfinished actions older than `stale_after` seconds whose run nobody may be driving:
    running, not yet at a gate, at a gate decided more than `stale_after` seconds ago, or at a
    gate opened in the last `recent` seconds (its step may have died before the pause was
    checkpointed). An action waiting at an older pending gate waits for its button."""
    stale = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after)
    lately = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, recent)
    of_run = and_(Approval.run_id == Action.run_id, Approval.gate == gate)
    has_gate = exists().where(of_run)
    decided = exists().where(of_run, Approval.status != "pending", Approval.decided_at < stale)
    opening = exists().where(
        of_run,
        Approval.status == "pending",
        Approval.created_at > lately,
        Approval.created_at < stale,
    )
    query = select(Action.id, Action.run_id).where(
        Action.status.in_(UNFINISHED),
        Action.created_at < stale,
        or_(Action.status == "running", not_(has_gate), decided, opening),
    )
    async with db.session() as session:
        return [(int(a), r) for a, r in (await session.execute(query)).all()]


async def unseen(db: Database, *, older_than: float, gate: str) -> list[int]:
    """Actions waiting at a pending gate opened more than `older_than` seconds ago whose card
    was never posted (whoever asked died between opening the gate and posting its card)."""
    before = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than)
    waiting = exists().where(
        Approval.run_id == Action.run_id,
        Approval.gate == gate,
        Approval.status == "pending",
        Approval.created_at < before,
    )
    query = select(Action.id).where(
        Action.status == "pending", Action.card_message_id.is_(None), waiting
    )
    async with db.session() as session:
        return [int(found) for found in (await session.scalars(query)).all()]


async def claim_card(db: Database, action_id: int) -> bool:
    """Take the posting of an unseen action's card (one replica posts it): True when taken.
    The claim is an empty message id, replaced by the posted card's (`release_card` else)."""
    statement = (
        sql_update(Action)
        .where(Action.id == action_id, Action.card_message_id.is_(None))
        .values(card_message_id="")
        .returning(Action.id)
    )
    async with db.session() as session:
        return (await session.scalar(statement)) is not None


async def release_card(db: Database, action_id: int) -> None:
    """Give up a claim whose card could not be posted: the next sweep tries again."""
    statement = (
        sql_update(Action)
        .where(Action.id == action_id, Action.card_message_id == "")
        .values(card_message_id=None)
    )
    async with db.session() as session:
        await session.execute(statement)


async def in_flight(db: Database) -> bool:
    """Whether a sweep may have work: an action not yet finished."""
    query = select(select(Action.id).where(Action.status.in_(UNFINISHED)).exists())
    async with db.session() as session:
        return bool(await session.scalar(query))
