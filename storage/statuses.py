"""Every status (and other closed set of values) a row can hold: one `Literal` each.

The models annotate their columns with these, the database's CHECK constraints are generated
from them (`storage.models`), and `mypy --strict` refuses a comparison with a value outside the
set, so a status the database never holds cannot be tested for.

    from storage.statuses import GateStatus, values
    values(GateStatus)   # ('pending', 'approved', 'rejected', 'expired', 'cancelled')
"""

from __future__ import annotations

from typing import Any, Literal, get_args

InboundStatus = Literal["pending", "processing", "done", "failed", "ignored"]
IncidentStatus = Literal[
    "open",
    "diagnosing",
    "awaiting_approval",
    "remediating",
    "resolved",
    "escalated",
    "suppressed",
]
AlertStatus = Literal["firing", "resolved"]
Risk = Literal["low", "medium", "high", "critical"]
GateStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]
ExecutionStatus = Literal["running", "succeeded", "failed", "skipped"]
ActionStatus = Literal[
    "pending", "running", "succeeded", "failed", "rejected", "expired", "refused"
]
ScheduleStatus = Literal["pending", "active", "paused", "completed", "deleted", "expired"]
ScheduleKind = Literal["once", "cron", "interval", "extended"]
ScheduleRunStatus = Literal["running", "succeeded", "failed", "missed"]
TurnRole = Literal["user", "assistant", "tool"]
CouncilPurpose = Literal["diagnosis", "question"]
CouncilBatchStatus = Literal["running", "done"]
# pending → running (claimed, with a lease) → answered | failed | timed_out; a running task whose
# lease ran out is claimed again (its first claimant's late result is refused)
CouncilTaskStatus = Literal["pending", "running", "answered", "failed", "timed_out"]
# a paging step's timer: waiting for its due time, taken by a replica, fired, or not needed
# (acknowledged or resolved first)
PageStatus = Literal["pending", "firing", "done", "cancelled"]
# a silence: in force (`active`, until it ends or is ended early), or a request that needs
# another approver's confirmation (`pending`: one matching every alert, or over 24 h) that was
# turned down or that nobody decided in time
SilenceStatus = Literal["active", "pending", "rejected", "expired"]

# The incident life cycle (README, "Incidents"):
#
#   open → diagnosing ⇄ awaiting_approval → remediating     the workflow has it (WORKFLOW)
#     └──────────────┴──────────┴───────────┴─→ escalated   a person must act now
#   any of these (escalated too) ─────────────→ resolved    over (FINAL)
#
# The workflow moves an incident between its own statuses and to escalated (a rejection, a
# timeout, a failed fix) or resolved (a verified fix); the alert's recovery resolves it from
# anywhere; approvers escalate (/escalate) a workflow incident and resolve (/resolve) any
# unresolved one. Acknowledging (/ack, or the first approval or rejection of a gate) sets who
# owns it without changing the status. `suppressed` is kept for old rows and never set.
WORKFLOW: tuple[IncidentStatus, ...] = ("open", "diagnosing", "awaiting_approval", "remediating")
UNRESOLVED: tuple[IncidentStatus, ...] = (*WORKFLOW, "escalated")
FINAL: tuple[IncidentStatus, ...] = ("resolved", "suppressed")
# where an incident may move to, from which statuses
MAY_MOVE: dict[IncidentStatus, tuple[IncidentStatus, ...]] = {
    **{status: WORKFLOW for status in WORKFLOW},
    "escalated": WORKFLOW,
    "resolved": UNRESOLVED,
}


def values(literal: Any) -> tuple[str, ...]:
    """The values of one of the Literals above, in their order."""
    return tuple(str(value) for value in get_args(literal))
