"""Approval gates: the `approvals` row of a gate is the truth every click is checked against.

A click is applied with one conditional `UPDATE … WHERE status = 'pending' … RETURNING`, so two
clicks (the same click delivered twice, or two people at the same instant) can never both
decide a gate; for a gate that needs two approvers the first click only adds its approver.

Usage::

    gate = await open_gate(db, run_id=..., incident_id=..., gate="diagnosis", token=...,
                           approvers=[...], required=1, requester=None, expires_at=...)
    claim = await claim(db, run_id, "diagnosis", token, "ou_bob", "approve")
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from prometheus_client import Counter
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import Action, Approval, Incident

Decision = Literal["approve", "reject"]

# approved / rejected / expired / cancelled: gates closed (each once, here); stale / forged /
# unauthorised: refused clicks (counted by the click handlers); role_denied: a click by someone
# whose roles do not admit the button at all (counted by the dispatcher). `gate` is one of the
# gates the code opens (diagnosis, proposal, action), or `unknown` for a forged button.
APPROVALS = Counter(
    "larkops_approvals_total", "Approval gates closed and clicks refused", ["gate", "outcome"]
)


def approvers_of(gate: Approval) -> tuple[str, ...]:
    """The open_ids that approved a gate so far, in click order."""
    return tuple(str(entry.get("open_id", "")) for entry in gate.approvals if entry)


@dataclass(frozen=True)
class Claim:
    """What one click did: `decided` when the gate is now closed (approved or rejected)."""

    row: Approval
    decided: bool


async def open_gate(
    db: Database,
    *,
    run_id: str,
    incident_id: int | None,
    gate: str,
    token: str,
    approvers: Sequence[str],
    required: int,
    named: bool = False,
    requester: str | None,
    expires_at: datetime,
) -> Approval:
    """Create the pending gate (idempotent: a replayed node gets the same row back)."""
    statement = (
        insert(Approval)
        .values(
            run_id=uuid.UUID(run_id),
            incident_id=incident_id,
            gate=gate,
            interrupt_id=token,
            allowed_approvers=list(approvers),
            approvers_named=named,
            required_approvals=required,
            requester=requester,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(constraint="uq_approvals_run_gate")
    )
    async with db.session() as session:
        await session.execute(statement)
        row = await session.scalar(
            select(Approval).where(
                Approval.run_id == uuid.UUID(run_id),
                Approval.gate == gate,
                Approval.interrupt_id == token,
            )
        )
    assert row is not None
    return row


async def find(db: Database, run_id: str, gate: str, token: str) -> Approval | None:
    async with db.session() as session:
        found = await session.scalar(
            select(Approval).where(
                Approval.run_id == uuid.UUID(run_id),
                Approval.gate == gate,
                Approval.interrupt_id == token,
            )
        )
    return found


_APPROVE = text(
    """
    UPDATE approvals SET
      approvals = approvals || jsonb_build_array(
          jsonb_build_object('open_id', CAST(:operator AS text), 'at', now())),
      status = CASE WHEN jsonb_array_length(approvals) + 1 >= required_approvals
                    THEN 'approved' ELSE 'pending' END,
      decided_by = CASE WHEN jsonb_array_length(approvals) + 1 >= required_approvals
                        THEN CAST(:operator AS text) ELSE decided_by END,
      decided_at = CASE WHEN jsonb_array_length(approvals) + 1 >= required_approvals
                        THEN now() ELSE decided_at END
    WHERE run_id = :run_id AND gate = :gate AND interrupt_id = :token
      AND status = 'pending' AND expires_at > now()
      AND NOT approvals @> jsonb_build_array(
          jsonb_build_object('open_id', CAST(:operator AS text)))
    RETURNING id
    """
)


async def claim(
    db: Database, run_id: str, gate: str, token: str, operator: str, decision: Decision
) -> Claim | None:
    """Apply one click atomically; None when the gate was not pending (stale, duplicate,
    expired) or this person already approved it."""
    params = {"run_id": uuid.UUID(run_id), "gate": gate, "token": token, "operator": operator}
    async with db.session() as session:
        if decision == "approve":
            changed = (await session.execute(_APPROVE, params)).scalar_one_or_none()
        else:
            changed = (
                await session.execute(
                    update(Approval)
                    .where(
                        Approval.run_id == params["run_id"],
                        Approval.gate == gate,
                        Approval.interrupt_id == token,
                        Approval.status == "pending",
                        Approval.expires_at > text("now()"),
                    )
                    .values(status="rejected", decided_by=operator, decided_at=text("now()"))
                    .returning(Approval.id)
                )
            ).scalar_one_or_none()
        if changed is None:
            return None
        row = await session.get(Approval, changed, populate_existing=True)
    assert row is not None
    if row.status != "pending":
        APPROVALS.labels(row.gate, row.status).inc()
    return Claim(row=row, decided=row.status != "pending")


async def expire_due(
    db: Database, *, incidents: bool = True, besides: Sequence[str] = ()
) -> Sequence[Approval]:
    """Close every pending gate past its expiry — incident gates, or (`incidents=False`) the
    gates of chat-requested actions — except those named in `besides` (their owner expires
    them); returns them (each exactly once)."""
    kind = Approval.incident_id.is_not(None) if incidents else Approval.incident_id.is_(None)
    async with db.session() as session:
        rows = await session.scalars(
            update(Approval)
            .where(
                Approval.status == "pending",
                Approval.expires_at <= text("now()"),
                kind,
                Approval.gate.not_in(besides or ("",)),
            )
            .values(status="expired", decided_at=text("now()"))
            .returning(Approval)
        )
        expired = rows.all()
    for row in expired:
        APPROVALS.labels(row.gate, "expired").inc()
    return expired


async def cancel_open(db: Database, incident_id: int) -> Sequence[Approval]:
    """Close the incident's pending gates (it resolved or was escalated by hand)."""
    async with db.session() as session:
        rows = await session.scalars(
            update(Approval)
            .where(Approval.incident_id == incident_id, Approval.status == "pending")
            .values(status="cancelled", decided_at=text("now()"))
            .returning(Approval)
        )
        cancelled = rows.all()
    for row in cancelled:
        APPROVALS.labels(row.gate, "cancelled").inc()
    return cancelled


async def get(db: Database, gate_id: int) -> Approval | None:
    async with db.session() as session:
        return await session.get(Approval, gate_id)


async def listing(
    db: Database,
    *,
    status: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
) -> Sequence[Approval]:
    """Gates, newest first (of one status, of one incident)."""
    query = select(Approval).order_by(Approval.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Approval.status == status)
    if incident_id is not None:
        query = query.where(Approval.incident_id == incident_id)
    async with db.session() as session:
        return (await session.scalars(query)).all()


async def chat_of(db: Database, gate: Approval) -> str | None:
    """The chat a gate belongs to: its incident's, or its action's (`/run`, a job's fix)."""
    async with db.session() as session:
        if gate.incident_id is not None:
            return await session.scalar(
                select(Incident.chat_id).where(Incident.id == gate.incident_id)
            )
        return await session.scalar(select(Action.chat_id).where(Action.run_id == gate.run_id))
