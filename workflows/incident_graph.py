"""The incident workflow as a LangGraph graph.

    ingest → triage → diagnose → send_diagnosis_card → await_diagnosis_approval ⏸
      → propose → remediate → resolve | escalate

`remediate` is the remediation subgraph every run shares (`workflows.remediation`: policy →
gate ⏸ → execute → verify), with this graph's `IncidentRemedy`: the policy judges the proposal,
the proposal card is the incident's card, a fix is not run for an incident that resolved
meanwhile, and verifying it checks the alert again. Its steps keep the names they had as nodes
of this graph in the metric and the traces (`policy_evaluate`, `send_proposal_card`,
`await_proposal_approval`, `execute`, `verify`); those names also stay nodes of the graph, so a
run an earlier version checkpointed at one of them goes on (`LEGACY`).

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
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
    PolicyVerdict,
    Proposal,
    RemediationState,
    Verification,
)
from workflows.ports import Advisor, Presenter, alert_from_json, alert_json
from workflows.remediation import (
    Node,
    RemediationStep,
    Step,
    await_decision,
    build_remediation,
    verdict_of,
)

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
# the remediation subgraph's steps by the names they had as nodes of this graph (the metric's
# labels, the spans' names)
LABELS = {
    "policy": "policy_evaluate",
    "open_gate": "send_proposal_card",
    "await_gate": "await_proposal_approval",
    "execute": "execute",
    "verify": "verify",
}
# nodes of the graph before the remediation subgraph, where runs it checkpointed may stand:
# they go on in `remediate` (the proposal gate's pause is answered in its own node)
LEGACY = ("policy_evaluate", "send_proposal_card", "await_proposal_approval", "execute", "verify")
# every node of the graph (a run's checkpoint names one of them, or the run is orphaned)
GRAPH_NODES = (*dict.fromkeys((*NODES, "no_runbook", "remediate", *LEGACY)),)


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
        return await open_incident_gate(
            deps,
            state["run_id"],
            state["incident_id"],
            state.get("requester"),
            gate,
            required,
            approvers,
        )

    async def send_diagnosis_card(state: IncidentState) -> IncidentState:
        token = await open_gate(state, "diagnosis", 1)
        return {"diagnosis_token": token, "gate_trace": tracing.here()}

    async def await_diagnosis_approval(state: IncidentState) -> IncidentState:
        return {"diagnosis_decision": await_decision("diagnosis", state["diagnosis_token"])}

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

    remediation = build_remediation(db, IncidentRemedy(deps)).compile()

    async def remediate(state: IncidentState, config: RunnableConfig) -> IncidentState:
        """The remediation subgraph, from where the run stands, under this run's config."""
        done = await remediation.ainvoke(handed(state), config)
        return kept(cast(RemediationState, done))

    async def await_proposal_approval(state: IncidentState) -> IncidentState:
        """A run an earlier version paused at this node: the pause is answered here, the
        remediation goes on from the decision."""
        return {"proposal_decision": await_decision("proposal", state["proposal_token"])}

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
        ("await_proposal_approval", await_proposal_approval),
        ("resolve", resolve),
        ("escalate", escalate),
        ("no_runbook", no_runbook),
    ):
        graph.add_node(name, measured(name, node))
    for name in ("remediate", *LEGACY):
        if name != "await_proposal_approval":
            graph.add_node(name, remediate)
    graph.add_edge(START, "ingest")
    graph.add_edge("ingest", "triage")
    graph.add_conditional_edges("triage", after_triage, ["diagnose", "resolve"])
    graph.add_conditional_edges("diagnose", after_diagnose, ["send_diagnosis_card", "no_runbook"])
    graph.add_edge("send_diagnosis_card", "await_diagnosis_approval")
    graph.add_conditional_edges(
        "await_diagnosis_approval", after_diagnosis_gate, ["propose", "resolve", "escalate"]
    )
    graph.add_conditional_edges("propose", after_propose, ["remediate", "resolve", "escalate"])
    graph.add_edge("await_proposal_approval", "remediate")
    for name in ("remediate", *LEGACY):
        if name != "await_proposal_approval":
            graph.add_conditional_edges(name, after_remediation, ["resolve", "escalate"])
    graph.add_edge("resolve", END)
    graph.add_edge("no_runbook", END)
    graph.add_edge("escalate", END)
    return graph


S = TypeVar("S", IncidentState, RemediationState)


def measured(name: str, node: Node[S]) -> Node[S]:
    """`node` (of this graph, or a step of its remediation), counted in
    `larkops_workflow_transitions_total` as it is entered and left, and traced as a span."""

    async def run(state: S) -> S:
        NODE_TRANSITIONS.labels(name, "entered").inc()
        view = cast(Mapping[str, Any], state)
        # a resumed gate links back to the step that opened it: no span stays open meanwhile
        opened = str(view.get("gate_trace", "")) if name.startswith("await_") else ""
        subject = cast(Mapping[str, Any], view.get("subject") or view)
        attributes = {
            "larkops.run_id": view.get("run_id"),
            "larkops.incident": subject.get("incident_id"),
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


async def open_incident_gate(
    deps: GraphDeps,
    run_id: str,
    incident_id: int,
    requester: str | None,
    gate: str,
    required: int,
    approvers: tuple[str, ...] = (),
) -> str:
    """Open the incident's gate and show it on its card; the gate's token, "" when the incident
    is over (resolved by its alert or a person): nobody is asked."""
    db = deps.db
    token = gate_token(run_id, gate)
    incident = await incidents.get_incident(db, incident_id)
    if incident is not None and incident.status in incidents.FINAL:
        return ""
    await gates.open_gate(
        db,
        deps.gates,
        run_id=run_id,
        incident_id=incident_id,
        chat_id=incident.chat_id if incident is not None else None,
        gate=gate,
        token=token,
        named=approvers,  # the policy's named list when it names one
        required=required,
        requester=requester,
    )
    if not await incidents.set_status(db, incident_id, "awaiting_approval", by="workflow"):
        now = await incidents.get_incident(db, incident_id)
        if now is not None and now.status in incidents.FINAL:
            # resolved between the look and the gate: the gate is withdrawn, never shown
            await approvals.cancel_open(db, incident_id)
            return ""
    await incidents.record_event(
        db, incident_id, "gate.opened", data={"gate": gate, "required": required}
    )
    await deps.presenter.show(incident_id)
    return token


@dataclass
class IncidentRemedy:
    """The remediation of an incident (`workflows.remediation.Remedy`): the policy judges the
    proposal for its alert, the proposal gate is shown on the incident's card, the fix is not
    run once the incident resolved, and the alert is checked again to verify it."""

    deps: GraphDeps
    gate: str = "proposal"

    async def judge(self, state: RemediationState) -> tuple[PolicyVerdict, bool]:
        db, subject = self.deps.db, state["subject"]
        incident_id, proposal = subject["incident_id"], subject["proposal"]
        decided = await self.deps.advisor.evaluate(proposal, alert_from_json(subject["alert"]))
        await incidents.save_proposal(
            db,
            incident_id,
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
            incident_id,
            "policy.decided",
            message=str(decided.get("reason", "")),
            data={
                "kind": decided.get("kind"),
                "risk": decided.get("risk"),
                "call": list(decided.get("call") or []),
            },
        )
        return decided, True  # a proposal for an incident is a fix

    async def open_gate(self, state: RemediationState) -> str:
        verdict, subject = verdict_of(state), state["subject"]
        required = int(verdict.get("required_approvals", 1) or 1)
        named = tuple(str(person) for person in verdict.get("approvers") or ())
        return await open_incident_gate(
            self.deps,
            state["run_id"],
            subject["incident_id"],
            subject.get("requester"),
            self.gate,
            required,
            named,
        )

    async def halted(self, state: RemediationState) -> bool:
        incident = await incidents.get_incident(self.deps.db, state["subject"]["incident_id"])
        return incident is None or incident.status not in incidents.WORKFLOW

    async def step(self, state: RemediationState) -> Step:
        verdict, subject = verdict_of(state), state["subject"]
        proposal = subject["proposal"]
        return Step(
            state["run_id"],
            "execute",
            str(proposal.get("plugin")),
            dict(proposal.get("params") or {}),
            incident_id=subject["incident_id"],
            target=str(verdict.get("target") or "") or None,
            auto=verdict.get("kind") == "auto",
            dry_run=bool(verdict.get("dry_run")),
        )

    async def starting(self, state: RemediationState) -> None:
        incident_id = state["subject"]["incident_id"]
        await incidents.set_status(self.deps.db, incident_id, "remediating", by="workflow")
        await self.deps.presenter.show(incident_id)

    async def act(self, state: RemediationState) -> ExecutionResult:
        subject = state["subject"]
        return await self.deps.advisor.execute(
            subject["proposal"],
            incident_id=subject["incident_id"],
            run_id=state["run_id"],
            dry_run=bool(verdict_of(state).get("dry_run")),
        )

    async def executed(self, state: RemediationState, result: ExecutionResult) -> None:
        subject = state["subject"]
        await incidents.record_event(
            self.deps.db,
            subject["incident_id"],
            "workflow.executed",
            message=str(result.get("summary", "")),
            data={"ok": result.get("ok"), "plugin": subject["proposal"].get("plugin")},
        )

    async def verify(self, state: RemediationState) -> Verification:
        subject = state["subject"]
        checked = await self.deps.advisor.verify(
            alert_from_json(subject["alert"]), subject["proposal"], state["execution"]
        )
        await incidents.record_event(
            self.deps.db,
            subject["incident_id"],
            "workflow.verified",
            message=str(checked.get("summary", "")),
            data={"ok": checked.get("ok"), "finding": checked.get("finding") or {}},
        )
        return checked

    def node(self, name: str, step: RemediationStep) -> RemediationStep:
        return measured(LABELS[name], step)


def handed(state: IncidentState) -> RemediationState:
    """What the remediation is handed: the incident, and how far an earlier version of the
    graph got with its steps (the state keys it wrote)."""
    run: RemediationState = {
        "run_id": state["run_id"],
        "subject": {
            "incident_id": state["incident_id"],
            "requester": state.get("requester"),
            "alert": state["alert"],
            "proposal": _proposal(state),
        },
    }
    if "policy" in state:
        run["verdict"], run["fix"] = state["policy"], True
    if "proposal_token" in state:
        run["token"] = state["proposal_token"]
    if "proposal_decision" in state:
        run["decision"] = state["proposal_decision"]
    if "halted" in state:
        run["halted"] = state["halted"]
    if "execution" in state:
        run["execution"] = state["execution"]
    if "verification" in state:
        run["verification"] = state["verification"]
    return run


def kept(done: RemediationState) -> IncidentState:
    """The remediation's outcome under this graph's state keys (`workflows.escalation.cause_of`
    and the API read them)."""
    changed: IncidentState = {}
    if "verdict" in done:
        changed["policy"] = done["verdict"]
    if "token" in done:
        changed["proposal_token"] = done["token"]
    if "decision" in done:
        changed["proposal_decision"] = done["decision"]
    if "halted" in done:
        changed["halted"] = done["halted"]
    if "execution" in done:
        changed["execution"] = done["execution"]
    if "verification" in done:
        changed["verification"] = done["verification"]
    if "gate_trace" in done:
        changed["gate_trace"] = done["gate_trace"]
    return changed


# the state's payloads as their types: a missing one reads as empty, as before
def _diagnosis(state: IncidentState) -> Diagnosis:
    return state.get("diagnosis") or cast(Diagnosis, {})


def _proposal(state: IncidentState) -> Proposal:
    return state.get("proposal") or cast(Proposal, {})


def _policy(state: IncidentState) -> PolicyVerdict:
    return state.get("policy") or cast(PolicyVerdict, {})


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
    return "remediate" if state.get("proposal") else "escalate"


def after_remediation(state: IncidentState) -> str:
    if state.get("halted") == "resolved":
        return "resolve"
    if "execution" not in state:  # refused by the policy, or not approved at its gate
        approve = _policy(state).get("kind") == "approve"
        return _gate_route(state.get("proposal_decision"), "escalate") if approve else "escalate"
    verification = state.get("verification")
    return "resolve" if verification and verification.get("ok") else "escalate"


def escalation_reason(state: IncidentState) -> str:
    """Why the run is escalating, as the stored English sentence (`workflows.escalation`)."""
    return cause_of(dict(state)).sentence()
