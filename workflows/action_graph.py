"""The remediation run of an action (`/run`, a scheduled fix, a fix the chat agent proposed) as
a LangGraph graph, checkpointed and driven like the incident workflow:

    remediate → finish

`remediate` is the remediation subgraph every run shares (`workflows.remediation`: policy →
gate ⏸ → execute → verify), with this graph's `ActionRemedy`:
- the policy (`judge`) is asked once and its decision kept on the action (a replay keeps the
  first); a scheduled fix is always put to a person;
- the gate is opened through `workflows.gates` (who may decide is decided there); the card
  that shows it is posted by whoever asked for the run, and later states patch it
  (`ActionDesk.show`); a click, the expiry sweep or a reclaim resumes it with the decision;
- the plugin runs at most once per action (`workflows.remediation.run_once`): a crash while it
  ran is reported as interrupted, outcome unknown, never run again;
- verifying it judges the plugin's own result (an action has no alert to check again).
`finish` writes the final status, audits it and patches the card.

The steps keep their spans' names (`action.judge`, `action.await_gate`, ...), and the names
they had as nodes of this graph stay nodes (`LEGACY`), so a run an earlier version
checkpointed at one of them goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph

from storage import actions, tracing
from storage.database import Database
from storage.models import Action
from storage.statuses import ActionStatus
from workflows import gates
from workflows.approvers import GatePolicy
from workflows.payloads import (
    ExecutionResult,
    GateDecision,
    PolicyVerdict,
    RemediationState,
    Verification,
)
from workflows.ports import JSON
from workflows.remediation import (
    Node,
    RemediationStep,
    Step,
    await_decision,
    build_remediation,
    verdict_of,
)

GATE = "action"
# the remediation subgraph's steps by the names they had as nodes of this graph (span names)
LABELS = {
    "policy": "judge",
    "open_gate": "open_gate",
    "await_gate": "await_gate",
    "execute": "execute",
    "verify": "verify",
}
# nodes of the graph before the remediation subgraph, where runs it checkpointed may stand:
# they go on in `remediate` (the gate's pause is answered in its own node)
LEGACY = ("judge", "open_gate", "await_gate", "execute", "verify")
NODES = ("remediate", *LEGACY, "finish")
Kind = Literal["auto", "approve", "refuse"]


class ActionState(TypedDict, total=False):
    action_id: int
    run_id: str
    force_approval: bool  # a scheduled fix: a person decides even what the policy would run
    trace_id: str | None
    decision: PolicyVerdict  # the policy's decision, as stored on the action
    remediation: bool  # the plugin changes something (the auto budget counts its auto runs)
    token: str
    gate_decision: GateDecision
    execution: ExecutionResult
    verified: bool
    outcome: ActionStatus
    gate_trace: str  # the span that opened the gate (`storage.tracing.here`), for a link


class ActionDesk(Protocol):
    """What the run needs from the bot: the policy's judgement, the plugin run, the audit, the
    card."""

    async def judge(self, action: Action, *, force_approval: bool) -> tuple[JSON, bool]:
        """The policy's decision on the action (as JSON), and whether the plugin is a fix."""

    async def execute(self, action: Action) -> ExecutionResult:
        """Run the plugin: {"ok", "summary", "output", "evidence", "data"}."""

    async def audit(
        self, action: Action, kind: str, actor: str, message: str, trace_id: str | None, **data: Any
    ) -> None: ...

    async def show(self, action_id: int) -> None:
        """Patch the action's card with its current state."""


@dataclass
class ActionDeps:
    db: Database
    desk: ActionDesk
    gates: GatePolicy


@dataclass
class ActionRemedy:
    """The remediation of an action (`workflows.remediation.Remedy`), through its desk."""

    deps: ActionDeps
    gate: str = GATE

    async def load(self, state: RemediationState) -> Action:
        action_id = state["subject"]["action_id"]
        action = await actions.get(self.deps.db, action_id)
        if action is None:
            raise LookupError(f"action {action_id} does not exist")
        return action

    async def judge(self, state: RemediationState) -> tuple[PolicyVerdict, bool]:
        action, subject = await self.load(state), state["subject"]
        decision, remediation = await self.deps.desk.judge(
            action, force_approval=bool(subject.get("force_approval"))
        )
        stored, fresh = await actions.record_decision(
            self.deps.db, action.id, decision, risk=decision.get("risk", "high")
        )
        if fresh:
            kind = stored.get("kind")
            reason = str(stored.get("reason", ""))
            await self.deps.desk.audit(
                action,
                f"action.{kind}",
                action.requester,
                reason,
                subject.get("trace_id"),
                risk=stored.get("risk"),
            )
        return cast(PolicyVerdict, stored), remediation

    async def open_gate(self, state: RemediationState) -> str:
        action, verdict = await self.load(state), verdict_of(state)
        token = state["run_id"]  # a run has one gate; its token is the run id (button values)
        await gates.open_gate(
            self.deps.db,
            self.deps.gates,
            run_id=state["run_id"],
            incident_id=None,
            chat_id=action.chat_id,
            gate=GATE,
            token=token,
            named=tuple(str(p) for p in verdict.get("approvers") or ()),
            required=int(verdict.get("required_approvals") or 1),
            requester=action.requester,
        )
        return token

    async def halted(self, state: RemediationState) -> bool:
        return False  # an action ends only by its run

    async def step(self, state: RemediationState) -> Step:
        action, verdict = await self.load(state), verdict_of(state)
        return Step(
            state["run_id"],
            "run",
            action.plugin,
            dict(action.params),
            dry_run=bool(verdict.get("dry_run")),
            target=str(verdict.get("target") or "") or None,
            auto=verdict.get("kind") == "auto" and bool(state.get("fix")),
            requested_by=action.requester,
        )

    async def starting(self, state: RemediationState) -> None:
        action = await self.load(state)
        await actions.update(self.deps.db, action.id, status="running")
        if action.card_message_id:
            await self.deps.desk.show(action.id)

    async def act(self, state: RemediationState) -> ExecutionResult:
        return await self.deps.desk.execute(await self.load(state))

    async def executed(self, state: RemediationState, result: ExecutionResult) -> None:
        return None  # audited as the run finishes

    async def verify(self, state: RemediationState) -> Verification:
        execution = state["execution"]
        return {"ok": bool(execution.get("ok")), "summary": str(execution.get("summary", ""))}

    def node(self, name: str, step: RemediationStep) -> RemediationStep:
        return traced(LABELS[name], step)


def build_action_graph(deps: ActionDeps) -> StateGraph[ActionState]:
    db, desk = deps.db, deps.desk
    remediation = build_remediation(db, ActionRemedy(deps)).compile()

    async def remediate(state: ActionState, config: RunnableConfig) -> ActionState:
        """The remediation subgraph, from where the run stands, under this run's config."""
        done = await remediation.ainvoke(handed(state), config)
        return kept(cast(RemediationState, done))

    async def await_gate(state: ActionState) -> ActionState:
        """A run an earlier version paused at this node: the pause is answered here, the
        remediation goes on from the decision."""
        return {"gate_decision": await_decision(GATE, state["token"])}

    async def load(state: ActionState) -> Action:
        action = await actions.get(db, state["action_id"])
        if action is None:
            raise LookupError(f"action {state['action_id']} does not exist")
        return action

    async def finish(state: ActionState) -> ActionState:
        action = await load(state)
        outcome = outcome_of(state)
        by = [str(p) for p in _gate(state).get("by") or ()]
        execution = state.get("execution")
        if execution is not None:
            await actions.finish(
                db,
                action.id,
                outcome,
                summary=str(execution.get("summary", "")),
                result={
                    "evidence": list(execution.get("evidence") or ()),
                    "output": str(execution.get("output", "")),
                    "data": dict(execution.get("data") or {}),
                    "finding": dict(execution.get("finding") or {}),
                    "by": by,
                    "interrupted": bool(execution.get("interrupted")),
                },
            )
            await desk.audit(
                action,
                "action.executed",
                "system",
                str(execution.get("summary", "")),
                None,
                ok=bool(execution.get("ok")),
                by=by,
            )
        elif outcome == "refused":
            await actions.finish(db, action.id, outcome)
        else:  # rejected or expired at the gate
            await actions.finish(db, action.id, outcome, result={"by": by})
            actor = by[0] if outcome == "rejected" and by else "system"
            await desk.audit(action, f"action.{outcome}", actor, "", None)
        await desk.show(action.id)
        return {"outcome": outcome}

    graph: StateGraph[ActionState] = StateGraph(ActionState)
    for name in ("remediate", *LEGACY):
        if name != "await_gate":
            graph.add_node(name, remediate)
            graph.add_edge(name, "finish")
    graph.add_node("await_gate", traced("await_gate", await_gate))
    graph.add_node("finish", traced("finish", finish))
    graph.add_edge(START, "remediate")
    graph.add_edge("await_gate", "remediate")
    graph.add_edge("finish", END)
    return graph


S = TypeVar("S", ActionState, RemediationState)


def traced(name: str, node: Node[S]) -> Node[S]:
    """`node` (of this graph, or a step of its remediation) as a span of the run's trace; the
    resumed gate links to the step that opened it."""

    async def run(state: S) -> S:
        view = cast(Mapping[str, Any], state)
        opened = str(view.get("gate_trace", "")) if name == "await_gate" else ""
        subject = cast(Mapping[str, Any], view.get("subject") or view)
        attributes = {
            "larkops.run_id": view.get("run_id"),
            "larkops.action": subject.get("action_id"),
        }
        with tracing.span(
            f"action.{name}", attributes, links=(opened,) if opened else (), quiet=(GraphBubbleUp,)
        ):
            return await node(state)

    run.__name__ = run.__qualname__ = name
    return run


def handed(state: ActionState) -> RemediationState:
    """What the remediation is handed: the action, and how far an earlier version of the
    graph got with its steps (the state keys it wrote)."""
    run: RemediationState = {
        "run_id": state["run_id"],
        "subject": {
            "action_id": state["action_id"],
            "force_approval": bool(state.get("force_approval")),
            "trace_id": state.get("trace_id"),
        },
    }
    if "decision" in state:
        run["verdict"] = state["decision"]
    if "remediation" in state:
        run["fix"] = state["remediation"]
    if "token" in state:
        run["token"] = state["token"]
    if "gate_decision" in state:
        run["decision"] = state["gate_decision"]
    if "execution" in state:
        run["execution"] = state["execution"]
    if "verified" in state:
        run["verification"] = {"ok": state["verified"], "summary": ""}
    return run


def kept(done: RemediationState) -> ActionState:
    """The remediation's outcome under this graph's state keys."""
    changed: ActionState = {}
    if "verdict" in done:
        changed["decision"] = done["verdict"]
    if "fix" in done:
        changed["remediation"] = done["fix"]
    if "token" in done:
        changed["token"] = done["token"]
    if "decision" in done:
        changed["gate_decision"] = done["decision"]
    if "execution" in done:
        changed["execution"] = done["execution"]
    if "verification" in done:
        changed["verified"] = bool(done["verification"].get("ok"))
    if "gate_trace" in done:
        changed["gate_trace"] = done["gate_trace"]
    return changed


# the state's payloads as their types: a missing one reads as empty, as before
def _decision(state: ActionState) -> PolicyVerdict:
    return state.get("decision") or cast(PolicyVerdict, {})


def _gate(state: ActionState) -> GateDecision:
    return state.get("gate_decision") or cast(GateDecision, {})


def outcome_of(state: ActionState) -> ActionStatus:
    """The action's final status, from what happened in its run."""
    if "execution" in state:
        return "succeeded" if state.get("verified") else "failed"
    if _decision(state).get("kind") not in ("auto", "approve"):
        return "refused"
    decided = _gate(state).get("decision")
    return "rejected" if decided == "reject" else "expired"
