"""Approval gates: the one place that decides who may approve what, and what a click does.

A gate is opened by a run (an incident's diagnosis or proposal, a chat-requested action) with
the people who may decide it: the policy's named list, or the chat's usual approvers. A click,
from a card button today and from any later interface, goes through `decide`, which checks
expiry, the gate's state, the decider, requester ≠ approver, and claims the gate atomically
(`storage.approvals.claim`); the answer is a typed `Verdict`. Expired gates are closed by
`sweep`. Every verdict is recorded in the audit timeline.

Usage::

    policy = GatePolicy(approvers=("ou_bob",), by_chat={"oc_ops": ("ou_carol",)})
    gate = await open_gate(db, policy, run_id=..., incident_id=7, chat_id="oc_ops",
                           gate="diagnosis", token=..., required=1, requester="ou_alice")
    verdict = await decide(db, policy, Click(...), Decider("ou_bob", approver=True), "oc_ops")
    if verdict.refusal is None and verdict.closed: ...  # resume the run
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from storage import approvals, incidents, silences
from storage.database import Database
from storage.models import Approval
from workflows.approvers import Decider, GatePolicy

Decision = Literal["approve", "reject"]
# why a click changed nothing; the first three are clicks that came too late
Refusal = Literal["expired", "unknown", "stale", "duplicate", "not_approver", "own_request"]
STALE: frozenset[Refusal] = frozenset({"expired", "unknown", "stale", "duplicate"})


@dataclass(frozen=True)
class Click:
    """What a button (or any other interface) asks of a gate."""

    run_id: str
    gate: str
    token: str
    incident_id: int | None
    decision: Decision
    expires: float | None = None  # epoch seconds the button itself says it is good until


@dataclass(frozen=True)
class Verdict:
    """The answer to a click: a refusal, or the gate claimed (`closed` when decided now)."""

    refusal: Refusal | None
    gate: Approval | None = None
    closed: bool = False

    @property
    def stale(self) -> bool:
        return self.refusal in STALE

    @property
    def approvals_so_far(self) -> int:
        return len(self.gate.approvals) if self.gate is not None else 0


async def open_gate(
    db: Database,
    policy: GatePolicy,
    *,
    run_id: str,
    incident_id: int | None,
    chat_id: str | None,
    gate: str,
    token: str,
    required: int,
    requester: str | None,
    named: Sequence[str] = (),
) -> Approval:
    """Open (or, on a replay, find) a pending gate: `named` when the policy names who decides,
    else the chat's usual approvers; expiring after the policy's ttl."""
    return await approvals.open_gate(
        db,
        run_id=run_id,
        incident_id=incident_id,
        gate=gate,
        token=token,
        approvers=tuple(named) or policy.usual(chat_id),
        named=bool(named),
        required=required,
        requester=None if policy.requester_may_approve else requester,
        expires_at=datetime.now(UTC) + policy.ttl,
    )


async def decide(
    db: Database,
    policy: GatePolicy,
    click: Click,
    decider: Decider,
    chat_id: str | None,
    *,
    trace_id: str | None = None,
) -> Verdict:
    """Apply one click to its gate; every outcome is audited."""
    verdict = await _judge(db, policy, click, decider, chat_id)
    kind = "click.refused" if verdict.refusal else "click.accepted"
    data: dict[str, object] = {"gate": click.gate, "decision": click.decision}
    if verdict.refusal:
        data["reason"] = verdict.refusal
        outcome = "stale" if verdict.stale else "unauthorised"
        approvals.APPROVALS.labels(click.gate, outcome).inc()
    else:
        data["decided"] = verdict.closed
    # the incident of the gate as stored: a click naming another (or a purged) one is audited
    # without it, the id it named kept in the data
    incident_id = verdict.gate.incident_id if verdict.gate is not None else None
    if click.incident_id != incident_id:
        data["incident"] = click.incident_id
    await incidents.record_event(
        db, incident_id, kind, actor=decider.open_id, data=data, trace_id=trace_id
    )
    if verdict.refusal is None and incident_id is not None:
        # the first person to decide a gate owns the incident from then on (MTTA counts it)
        await incidents.acknowledge(db, incident_id, decider.open_id)
    return verdict


async def _judge(
    db: Database, policy: GatePolicy, click: Click, decider: Decider, chat_id: str | None
) -> Verdict:
    if click.expires is not None and click.expires < time.time():
        return Verdict("expired")
    try:
        uuid.UUID(click.run_id)
    except ValueError:
        return Verdict("unknown")
    row = await approvals.find(db, click.run_id, click.gate, click.token)
    if row is None or row.incident_id != click.incident_id:
        return Verdict("unknown")  # (not the row: it is not this click's gate)
    if row.status != "pending":
        return Verdict("stale", row)
    if row.expires_at <= datetime.now(UTC):  # due, and the sweep has not closed it yet
        return Verdict("expired", row)
    if not policy.may_decide(row, decider, chat_id):
        return Verdict("not_approver", row)
    if click.decision == "approve" and row.requester and row.requester == decider.open_id:
        return Verdict("own_request", row)
    claim = await approvals.claim(
        db, click.run_id, click.gate, click.token, decider.open_id, click.decision
    )
    if claim is None:
        return Verdict("duplicate", row)
    return Verdict(None, claim.row, claim.decided)


async def sweep(db: Database, *, incident_gates: bool) -> Sequence[Approval]:
    """Close every pending gate past its expiry (of incidents, or of chat-requested actions);
    each is returned exactly once, for its owner to carry on."""
    # a silence request waits for its own time and is expired with it (`silences.expire_requests`)
    return await approvals.expire_due(db, incidents=incident_gates, besides=(silences.GATE,))
