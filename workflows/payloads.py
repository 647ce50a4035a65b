"""The data a workflow run keeps in its checkpoints and passes through its pauses, as types.

Everything here is a `TypedDict`: plain JSON at runtime, so LangGraph checkpoints written by an
earlier version (plain dicts with the same keys) load unchanged, while mypy checks every read
and write of a key. Keys are never renamed: a checkpoint outlives a deploy.

- `GatePause`: what a gate's one `interrupt()` holds (which gate, the token its buttons carry);
- `GateDecision`: the value a run resumes with (a click, the expiry sweep, a person ending the
  incident or escalating it, its alert resolving);
- `AlertFacts`, `Diagnosis`, `Proposal`, `PolicyVerdict`, `ExecutionResult`, `Verification`:
  what the `Advisor` (`workflows.ports`) returns at each step of the incident graph;
- `Subject`, `RemediationState`: what the remediation subgraph (`workflows.remediation`) is
  handed by the run it is part of, and what it keeps.

Usage::

    decided: GateDecision = interrupt(GatePause(gate="proposal", token=token))
    await runs.resume(run_id, token, gate_decision("approve", ["ou_bob"]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NotRequired, Required, TypedDict, get_args

# how a gate was decided: "resolved" when the incident ended while its gate waited
Verdict = Literal["approve", "reject", "timeout", "escalate", "resolved"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


class GatePause(TypedDict):
    gate: str  # "diagnosis" | "proposal" (incident runs), "action" (action runs)
    token: str  # the gate's token: its buttons carry it, `approvals.interrupt_id` holds it


class GateDecision(TypedDict):
    decision: Verdict
    by: list[str]  # who decided (open ids; "alert" when the alert resolved); empty on expiry


def gate_decision(decision: str, by: Sequence[str]) -> GateDecision:
    """A resume value from a decision given as text (a click's); ValueError when it is not
    one of `VERDICTS`."""
    for verdict in VERDICTS:
        if verdict == decision:
            return {"decision": verdict, "by": list(by)}
    raise ValueError(f"not a gate decision: {decision!r}")


class AlertFacts(TypedDict):
    """An alert as the run keeps it (`workflows.ports.alert_json`)."""

    title: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    service: str | None


class Diagnosis(TypedDict, total=False):
    """What the advisor found: the rules' runbook, a model, or a council of models."""

    summary: Required[str]
    hypotheses: list[list[Any]]  # [cause, confidence]
    evidence: list[list[Any]]  # [source, text]
    next_checks: list[str]
    provider: str  # "rules", "council" or "<provider>:<model>"
    partial: bool
    codes: dict[str, Any]  # the rules' finding codes with values (`cards/` words them)
    similar: list[dict[str, Any]]  # similar past incidents (`workflows.memory`)
    fallback: str  # why a model's diagnosis was replaced by the rules'
    partial_reason: str | None
    tool_calls: list[list[Any]]  # [tool, ok]
    council: dict[str, Any]  # a council's merged view and members


class Proposal(TypedDict, total=False):
    """A remediation: a plugin run with its parameters."""

    plugin: Required[str]
    params: Required[dict[str, Any]]
    title_zh: str
    title_en: str
    steps: list[str]
    rationale: str
    risk_hint: str | None  # a model's: may raise the plugin's risk, never lower it
    source: str  # the model that proposed it (a runbook's proposal has none)


class PolicyVerdict(TypedDict, total=False):
    """The policy's decision on a proposal (`plugins.policy.PolicyDecision.as_json`), with
    the plugin call it judged."""

    kind: Required[str]  # "auto" | "approve" | "refuse"
    risk: Required[str]
    required_approvals: Required[int]
    reason: Required[str]
    code: str
    detail: str
    approver_list: str | None
    approvers: list[str]
    dry_run: bool
    target: str
    call: list[str]  # the plugin call as shown on the card


class ExecutionResult(TypedDict, total=False):
    """One plugin run's result (`workflows.remediation.run_once`)."""

    ok: Required[bool]
    summary: Required[str]
    output: str
    data: dict[str, Any]
    evidence: list[Any]
    finding: dict[str, Any]
    # an earlier attempt died while the plugin ran: the outcome is unknown, it is not run again
    interrupted: NotRequired[bool]


class Verification(TypedDict, total=False):
    """Whether the fix worked."""

    ok: Required[bool]
    summary: Required[str]
    finding: dict[str, Any]


class Subject(TypedDict, total=False):
    """What a remediation works on, as the run it is part of hands it in: an incident (its
    alert and the proposal for it) or an action (`/run`, a scheduled fix, an agent's proposal:
    the action row holds the plugin call)."""

    incident_id: int
    action_id: int
    requester: str | None  # who asked for the run (may not approve it unless allowed)
    alert: AlertFacts
    proposal: Proposal
    force_approval: bool  # a scheduled fix: a person decides even what the policy would run
    trace_id: str | None


class RemediationState(TypedDict, total=False):
    """The remediation subgraph's state: policy → gate → execute → verify."""

    run_id: str
    subject: Subject
    verdict: PolicyVerdict  # the policy's decision
    fix: bool  # the plugin changes something (the auto budget counts its auto runs)
    token: str  # the gate's token; "" when no gate was opened (the incident is over)
    decision: GateDecision  # how the gate was decided
    halted: str  # "resolved" when the incident resolved before the fix ran
    execution: ExecutionResult
    verification: Verification
    gate_trace: str  # the span that opened the gate (`storage.tracing.here`), for a link
