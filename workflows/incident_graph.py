"""The incident workflow as a LangGraph graph.

    ingest → triage → diagnose → send_diagnosis_card → await_diagnosis_approval ⏸
      → propose → policy_evaluate → (auto) execute | (approve) send_proposal_card
      → await_proposal_approval ⏸ → execute → verify → resolve | escalate

Rules the graph keeps (each a lesson from a project with the same pipeline):
- every approval gate is its own node with exactly one `interrupt()`; the card that asks for the
  decision is sent by the node before it, so no side effect is repeated when a paused node
  is re-entered on resume;
- nodes return only the keys they change; routing functions read state and write nothing;
- side effects are idempotent: gates are keyed by a token derived from (run, gate), messages
  carry idempotency keys, and the remediation is claimed in `executions` (unique run + step),
  so a crash and replay never acts twice;
- the stored incident is re-read before proposing and executing: a fix is never proposed or run
  for an incident that resolved meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, cast

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from prometheus_client import Counter

from plugins.contract import AlertContext
from storage import approvals, incidents, tracing
from storage.database import Database
from storage.models import Alert
from workflows import gates
from workflows.approvers import GatePolicy
from workflows.escalation import cause_of
from workflows.payloads import (
    AlertFacts,
    Diagnosis,
    ExecutionResult,
    GateDecision,
    GatePause,
    PolicyVerdict,
    Proposal,
    Verification,
)
from workflows.ports import Advisor, Presenter, alert_from_json, alert_json
from workflows.remediation import Step, run_once

GATE_NAMESPACE = uuid.UUID("4f1d2c56-9b1e-4a43-8d0e-5e8f6c7a9b10")
NODES = (
    "ingest",
    "triage",
    "diagnose",
    "send_diagnosis_card",
    "await_diagnosis_approval",
    "propose",
    "policy_evaluate",
    "send_proposal_card",
    "await_proposal_approval",
    "execute",
    "verify",
    "resolve",
    "escalate",
)
# entered; then finished, failed (raised), or paused (an approval gate's interrupt); a gate node
# is entered twice per pass: once to pause, once when resumed
NODE_OUTCOMES = ("entered", "finished", "failed", "paused")
NODE_TRANSITIONS = Counter(
    "larkops_workflow_transitions_total",
    "Incident graph nodes entered and left, by node and outcome",
    ["node", "outcome"],
)
for _node in NODES:
    for _outcome in NODE_OUTCOMES:
        NODE_TRANSITIONS.labels(_node, _outcome)


class IncidentState(TypedDict, total=False):
    incident_id: int
    run_id: str
    requester: str | None  # who asked for the run (may not approve it unless allowed)
    alert: AlertFacts
    triage: str  # "continue" | "resolved"
    diagnosis: Diagnosis
    diagnosis_token: str
    diagnosis_decision: GateDecision
    proposal: Proposal | None
    halted: str  # "resolved" when the incident resolved while the run was working
    policy: PolicyVerdict
    proposal_token: str
    proposal_decision: GateDecision
    execution: ExecutionResult
    verification: Verification
    outcome: str
    escalation_reason: str
    gate_trace: str  # the span that opened the latest gate (`storage.tracing.here`), for a link


@dataclass
class GraphDeps:
    db: Database
    advisor: Advisor
    presenter: Presenter
    gates: GatePolicy


def gate_token(run_id: str, gate: str) -> str:
    """The id of a gate's pause: the same on every replay of the run."""
    return str(uuid.uuid5(GATE_NAMESPACE, f"{run_id}:{gate}"))


def build_graph(deps: GraphDeps) -> StateGraph[IncidentState]:
    db, advisor, presenter = deps.db, deps.advisor, deps.presenter

    async def ingest(state: IncidentState) -> IncidentState:
        incident_id = state["incident_id"]
        incident = await incidents.get_incident(db, incident_id)
        if incident is None:
            raise LookupError(f"incident {incident_id} does not exist")
        latest: Alert | None = await incidents.latest_alert(db, incident_id)
        facts = AlertContext(
            title=incident.title,
            severity=incident.severity,
            labels=dict(incident.labels),
            annotations=dict(latest.annotations) if latest is not None else {},
            service=incident.service,
        )
        await incidents.record_event(
            db, incident_id, "workflow.started", data={"run_id": state["run_id"]}
        )
        return {"alert": alert_json(facts)}

    async def triage(state: IncidentState) -> IncidentState:
        incident = await incidents.get_incident(db, state["incident_id"])
        if incident is None or incident.status not in incidents.WORKFLOW:
            return {"triage": "resolved"}
        await incidents.set_status(db, state["incident_id"], "diagnosing", by="workflow")
        return {"triage": "continue"}

    async def diagnose(state: IncidentState) -> IncidentState:
        facts = alert_from_json(state["alert"])
        found = await advisor.diagnose(
            facts, incident_id=state["incident_id"], run_id=state["run_id"]
        )
        await incidents.save_diagnosis(db, state["incident_id"], state["run_id"], found)
        await incidents.record_event(
            db,
            state["incident_id"],
            "workflow.diagnosed",
            message=str(found.get("summary", "")),
            data={
                "provider": found.get("provider"),
                "partial": found.get("partial", False),
                "codes": found.get("codes") or {},
            },
        )
        return {"diagnosis": found}

    async def open_gate(
        state: IncidentState, gate: str, required: int, approvers: tuple[str, ...] = ()
    ) -> str:
        token = gate_token(state["run_id"], gate)
        incident = await incidents.get_incident(db, state["incident_id"])
        if incident is not None and incident.status in incidents.FINAL:
            return ""  # resolved meanwhile (by its alert or a person): nobody is asked
        await gates.open_gate(
            db,
            deps.gates,
            run_id=state["run_id"],
            incident_id=state["incident_id"],
            chat_id=incident.chat_id if incident is not None else None,
            gate=gate,
            token=token,
            named=approvers,  # the policy's named list when it names one
            required=required,
            requester=state.get("requester"),
        )
        if not await incidents.set_status(
            db, state["incident_id"], "awaiting_approval", by="workflow"
        ):
            now = await incidents.get_incident(db, state["incident_id"])
            if now is not None and now.status in incidents.FINAL:
                # resolved between the look and the gate: the gate is withdrawn, never shown
                await approvals.cancel_open(db, state["incident_id"])
                return ""
        await incidents.record_event(
            db, state["incident_id"], "gate.opened", data={"gate": gate, "required": required}
        )
        await presenter.show(state["incident_id"])
        return token

    async def send_diagnosis_card(state: IncidentState) -> IncidentState:
        token = await open_gate(state, "diagnosis", 1)
        return {"diagnosis_token": token, "gate_trace": tracing.here()}

    async def await_diagnosis_approval(state: IncidentState) -> IncidentState:
        if not state["diagnosis_token"]:  # no gate was opened: the incident is over
            return {"diagnosis_decision": {"decision": "resolved", "by": []}}
        decision = interrupt(GatePause(gate="diagnosis", token=state["diagnosis_token"]))
        return {"diagnosis_decision": _decision(decision)}

    async def propose(state: IncidentState) -> IncidentState:
        incident = await incidents.get_incident(db, state["incident_id"])
        if incident is None or incident.status not in incidents.WORKFLOW:
            return {"halted": "resolved"}
        await incidents.set_status(db, state["incident_id"], "diagnosing", by="workflow")
        facts = alert_from_json(state["alert"])
        proposal = await advisor.propose(
            facts,
            _diagnosis(state),
            incident_id=state["incident_id"],
            run_id=state["run_id"],
        )
        await incidents.record_event(
            db,
            state["incident_id"],
            "workflow.proposed" if proposal else "workflow.no_proposal",
            message=str(proposal.get("rationale", "")) if proposal else "",
            data={
                "plugin": proposal.get("plugin") if proposal else None,
                # the title people read, in both languages (the rationale is the rules' own)
                "title_zh": proposal.get("title_zh") if proposal else None,
                "title_en": proposal.get("title_en") if proposal else None,
            },
        )
        return {"proposal": proposal}

    async def policy_evaluate(state: IncidentState) -> IncidentState:
        proposal = _proposal(state)
        facts = alert_from_json(state["alert"])
        decided = await advisor.evaluate(proposal, facts)
        await incidents.save_proposal(
            db,
            state["incident_id"],
            state["run_id"],
            plugin=str(proposal.get("plugin", "")),
            params=dict(proposal.get("params") or {}),
            risk=str(decided.get("risk", "high")),
            rationale=str(proposal.get("rationale", "")),
            decision=str(decided.get("kind")),
            decision_reason=str(decided.get("reason", "")),
        )
        await incidents.record_event(
            db,
            state["incident_id"],
            "policy.decided",
            message=str(decided.get("reason", "")),
            data={
                "kind": decided.get("kind"),
                "risk": decided.get("risk"),
                "call": list(decided.get("call") or []),
            },
        )
        return {"policy": decided}

    async def send_proposal_card(state: IncidentState) -> IncidentState:
        policy = _policy(state)
        required = int(policy.get("required_approvals", 1) or 1)
        named = tuple(str(person) for person in policy.get("approvers") or ())
        token = await open_gate(state, "proposal", required, named)
        return {"proposal_token": token, "gate_trace": tracing.here()}

    async def await_proposal_approval(state: IncidentState) -> IncidentState:
        if not state["proposal_token"]:  # no gate was opened: the incident is over
            return {"proposal_decision": {"decision": "resolved", "by": []}}
        decision = interrupt(GatePause(gate="proposal", token=state["proposal_token"]))
        return {"proposal_decision": _decision(decision)}

    async def execute(state: IncidentState) -> IncidentState:
        incident_id, run_id = state["incident_id"], state["run_id"]
        incident = await incidents.get_incident(db, incident_id)
        if incident is None or incident.status not in incidents.WORKFLOW:
            return {"halted": "resolved"}
        proposal = _proposal(state)
        policy = _policy(state)
        dry_run = bool(policy.get("dry_run"))
        step = Step(
            run_id,
            "execute",
            str(proposal.get("plugin")),
            dict(proposal.get("params") or {}),
            incident_id=incident_id,
            target=str(policy.get("target") or "") or None,
            auto=policy.get("kind") == "auto",
            dry_run=dry_run,
        )

        async def starting() -> None:
            await incidents.set_status(db, incident_id, "remediating", by="workflow")
            await presenter.show(incident_id)

        async def act() -> ExecutionResult:
            return await advisor.execute(
                proposal, incident_id=incident_id, run_id=run_id, dry_run=dry_run
            )

        result = await run_once(db, step, act, starting=starting)
        await incidents.record_event(
            db,
            incident_id,
            "workflow.executed",
            message=str(result.get("summary", "")),
            data={"ok": result.get("ok"), "plugin": proposal.get("plugin")},
        )
        return {"execution": result}

    async def verify(state: IncidentState) -> IncidentState:
        facts = alert_from_json(state["alert"])
        checked = await advisor.verify(facts, _proposal(state), state["execution"])
        await incidents.record_event(
            db,
            state["incident_id"],
            "workflow.verified",
            message=str(checked.get("summary", "")),
            data={"ok": checked.get("ok"), "finding": checked.get("finding") or {}},
        )
        return {"verification": checked}

    async def resolve(state: IncidentState) -> IncidentState:
        incident_id = state["incident_id"]
        # the audit line first: whoever sees the status change finds it in the timeline
        await incidents.record_event(db, incident_id, "workflow.resolved")
        await incidents.set_status(db, incident_id, "resolved", by="workflow")
        await approvals.cancel_open(db, incident_id)
        await presenter.show(incident_id)
        await advisor.remember(incident_id)
        return {"outcome": "resolved"}

    async def no_runbook(state: IncidentState) -> IncidentState:
        """No runbook knows this alert: nothing to approve. The incident waits, open, for a
        person (its card says what can be done: `/run`, `/escalate`); paging goes on."""
        incident_id = state["incident_id"]
        await incidents.record_event(db, incident_id, "workflow.no_runbook")
        await incidents.set_status(db, incident_id, "open", by="workflow")
        await presenter.show(incident_id)
        return {"outcome": "no_runbook"}

    async def escalate(state: IncidentState) -> IncidentState:
        incident_id = state["incident_id"]
        cause = cause_of(dict(state))
        reason = cause.sentence()
        await incidents.record_event(
            db, incident_id, "workflow.escalated", message=reason, data={"cause": cause.as_json()}
        )
        await incidents.set_status(
            db,
            incident_id,
            "escalated",
            by="workflow",
            escalation_reason=reason,
            escalation=cause.as_json(),
        )
        await approvals.cancel_open(db, incident_id)
        await presenter.show(incident_id)
        await presenter.escalate(incident_id, reason)
        await advisor.remember(incident_id)  # /similar finds it while people work on it
        return {"outcome": "escalated", "escalation_reason": reason}

    graph: StateGraph[IncidentState] = StateGraph(IncidentState)
    for name, node in (
        ("ingest", ingest),
        ("triage", triage),
        ("diagnose", diagnose),
        ("send_diagnosis_card", send_diagnosis_card),
        ("await_diagnosis_approval", await_diagnosis_approval),
        ("propose", propose),
        ("policy_evaluate", policy_evaluate),
        ("send_proposal_card", send_proposal_card),
        ("await_proposal_approval", await_proposal_approval),
        ("execute", execute),
        ("verify", verify),
        ("resolve", resolve),
        ("escalate", escalate),
        ("no_runbook", no_runbook),
    ):
        graph.add_node(name, measured(name, node))
    graph.add_edge(START, "ingest")
    graph.add_edge("ingest", "triage")
    graph.add_conditional_edges("triage", after_triage, ["diagnose", "resolve"])
    graph.add_conditional_edges("diagnose", after_diagnose, ["send_diagnosis_card", "no_runbook"])
    graph.add_edge("send_diagnosis_card", "await_diagnosis_approval")
    graph.add_conditional_edges(
        "await_diagnosis_approval", after_diagnosis_gate, ["propose", "resolve", "escalate"]
    )
    graph.add_conditional_edges(
        "propose", after_propose, ["policy_evaluate", "resolve", "escalate"]
    )
    graph.add_conditional_edges(
        "policy_evaluate", after_policy, ["execute", "send_proposal_card", "escalate"]
    )
    graph.add_edge("send_proposal_card", "await_proposal_approval")
    graph.add_conditional_edges(
        "await_proposal_approval", after_proposal_gate, ["execute", "resolve", "escalate"]
    )
    graph.add_conditional_edges("execute", after_execute, ["verify", "resolve", "escalate"])
    graph.add_conditional_edges("verify", after_verify, ["resolve", "escalate"])
    graph.add_edge("resolve", END)
    graph.add_edge("no_runbook", END)
    graph.add_edge("escalate", END)
    return graph


class Node(Protocol):
    """A node of the graph (LangGraph passes the state by the name `state`)."""

    def __call__(self, state: IncidentState) -> Awaitable[IncidentState]: ...


def measured(name: str, node: Node) -> Node:
    """`node`, counted in `larkops_workflow_transitions_total` as it is entered and left."""

    async def run(state: IncidentState) -> IncidentState:
        NODE_TRANSITIONS.labels(name, "entered").inc()
        # a resumed gate links back to the step that opened it: no span stays open meanwhile
        opened = state.get("gate_trace", "") if name.startswith("await_") else ""
        attributes = {
            "larkops.run_id": state.get("run_id"),
            "larkops.incident": state.get("incident_id"),
        }
        with tracing.span(
            f"graph.{name}", attributes, links=(opened,) if opened else (), quiet=(GraphBubbleUp,)
        ) as current:
            try:
                changed = await node(state)
            except GraphBubbleUp:  # interrupt(): the run pauses here until a decision
                NODE_TRANSITIONS.labels(name, "paused").inc()
                current.set_attribute("graph.paused", True)
                raise
            except Exception:
                NODE_TRANSITIONS.labels(name, "failed").inc()
                raise
        NODE_TRANSITIONS.labels(name, "finished").inc()
        return changed

    run.__name__ = run.__qualname__ = name
    return run


# the state's payloads as their types: a missing one reads as empty, as before
def _diagnosis(state: IncidentState) -> Diagnosis:
    return state.get("diagnosis") or cast(Diagnosis, {})


def _proposal(state: IncidentState) -> Proposal:
    return state.get("proposal") or cast(Proposal, {})


def _policy(state: IncidentState) -> PolicyVerdict:
    return state.get("policy") or cast(PolicyVerdict, {})


def _decision(resumed: Any) -> GateDecision:
    """The value a gate's pause was resumed with (`GateDecision`), as a fresh dict."""
    return cast(GateDecision, dict(resumed))


# routing: read state, write nothing -------------------------------------------------------


def after_triage(state: IncidentState) -> str:
    return "resolve" if state.get("triage") == "resolved" else "diagnose"


def after_diagnose(state: IncidentState) -> str:
    """No gate when no runbook matched: there is nothing the bot could go on to do."""
    codes = _diagnosis(state).get("codes") or {}
    summary = codes.get("summary") if isinstance(codes, dict) else None
    unknown = isinstance(summary, dict) and summary.get("code") == "no_runbook"
    return "no_runbook" if unknown else "send_diagnosis_card"


def _gate_route(decision: GateDecision | None, approved: str) -> str:
    verdict = decision.get("decision") if decision else None
    if verdict == "approve":
        return approved
    return "resolve" if verdict == "resolved" else "escalate"


def after_diagnosis_gate(state: IncidentState) -> str:
    return _gate_route(state.get("diagnosis_decision"), "propose")


def after_propose(state: IncidentState) -> str:
    if state.get("halted") == "resolved":
        return "resolve"
    return "policy_evaluate" if state.get("proposal") else "escalate"


def after_policy(state: IncidentState) -> str:
    kind = (_policy(state)).get("kind")
    return {"auto": "execute", "approve": "send_proposal_card"}.get(str(kind), "escalate")


def after_proposal_gate(state: IncidentState) -> str:
    return _gate_route(state.get("proposal_decision"), "execute")


def after_execute(state: IncidentState) -> str:
    if state.get("halted") == "resolved":
        return "resolve"
    execution = state.get("execution")
    return "verify" if execution and execution.get("ok") else "escalate"


def after_verify(state: IncidentState) -> str:
    verification = state.get("verification")
    return "resolve" if verification and verification.get("ok") else "escalate"


def escalation_reason(state: IncidentState) -> str:
    """Why the run is escalating, as the stored English sentence (`workflows.escalation`)."""
    return cause_of(dict(state)).sentence()
