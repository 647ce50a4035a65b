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
# running (claimed; its replica holds the run's lease) → succeeded | failed; missed: recorded,
# never run; interrupted: its replica died mid-run and it was not run again (the chat was told)
ScheduleRunStatus = Literal["running", "succeeded", "failed", "missed", "interrupted"]
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

# The incident life cycle (README, "Incidents"): the one place that says who may move an
# incident to which status, from where.
#
#   open → diagnosing ⇄ awaiting_approval → remediating     the workflow has it (WORKFLOW)
#     └──────────────┴──────────┴───────────┴─→ escalated   a person must act now
#   any of these (escalated too) ─────────────→ resolved    over (FINAL)
#
# Acknowledging (/ack, the Ack button, or the first approval or rejection of a gate) sets who
# owns an incident without changing its status (`storage.incidents.acknowledge`): an
# unresolved incident may be acknowledged once, by an operator. `suppressed` is kept for old
# rows and never set.
WORKFLOW: tuple[IncidentStatus, ...] = ("open", "diagnosing", "awaiting_approval", "remediating")
UNRESOLVED: tuple[IncidentStatus, ...] = (*WORKFLOW, "escalated")
FINAL: tuple[IncidentStatus, ...] = ("resolved", "suppressed")
# who moves an incident: its workflow run, its alert (the recovery), or a person holding the
# approver role (/escalate, /resolve)
Mover = Literal["workflow", "alert", "approver"]
# (to, by whom) → the statuses it may come from; a move not listed is refused
MOVES: dict[tuple[IncidentStatus, Mover], tuple[IncidentStatus, ...]] = {
    **{(status, "workflow"): WORKFLOW for status in WORKFLOW},
    ("escalated", "workflow"): WORKFLOW,  # a rejected or expired gate, a failed or unknown fix
    ("resolved", "workflow"): WORKFLOW,  # a verified fix
    ("escalated", "approver"): WORKFLOW,  # /escalate (an escalated one already is)
    ("resolved", "approver"): UNRESOLVED,  # /resolve, escalated incidents too
    # the alert's recovery, except while a fix runs: it finishes and verifies itself
    ("resolved", "alert"): tuple(s for s in UNRESOLVED if s != "remediating"),
}


def may_move(current: IncidentStatus, to: IncidentStatus, by: Mover) -> bool:
    """Whether `by` may move an incident from `current` to `to`."""
    return current in MOVES.get((to, by), ())


def may_acknowledge(current: IncidentStatus) -> bool:
    """Whether an incident may be acknowledged (an operator's /ack or Ack button, or a gate
    decision): while it is not yet resolved, escalated ones too."""
    return current in UNRESOLVED


def values(literal: Any) -> tuple[str, ...]:
    """The values of one of the Literals above, in their order."""
    return tuple(str(value) for value in get_args(literal))
