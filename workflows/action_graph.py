"""The remediation run of an action (`/run`, a scheduled fix, a fix the chat agent proposed) as
a LangGraph graph, checkpointed and driven like the incident workflow:

    judge → (auto) execute | (approve) open_gate → await_gate ⏸ → execute | (refuse) finish
    execute → verify → finish

- `judge` asks the policy once and keeps its decision on the action (a replay keeps the first);
- `open_gate` opens the approval gate through `workflows.gates` (who may decide is decided
  there); the card that shows it is posted by whoever asked for the run, and later states
  patch it (`ActionDesk.show`);
- `await_gate` is the gate's one `interrupt()`; a click, the expiry sweep or a reclaim resumes
  it with the decision;
- `execute` runs the plugin at most once per action (`workflows.remediation.run_once`): a crash
  while it ran is reported as interrupted, outcome unknown, never run again;
- `verify` judges the run from the plugin's own result (an action has no alert to check again);
- `finish` writes the final status, audits it and patches the card.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict, cast

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from storage import actions, tracing
from storage.database import Database
from storage.models import Action
from storage.statuses import ActionStatus
from workflows import gates
from workflows.approvers import GatePolicy
from workflows.payloads import ExecutionResult, GateDecision, GatePause, PolicyVerdict
from workflows.ports import JSON
from workflows.remediation import Step, run_once

GATE = "action"
NODES = ("judge", "open_gate", "await_gate", "execute", "verify", "finish")
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


def build_action_graph(deps: ActionDeps) -> StateGraph[ActionState]:
    db, desk = deps.db, deps.desk

    async def load(state: ActionState) -> Action:
        action = await actions.get(db, state["action_id"])
        if action is None:
            raise LookupError(f"action {state['action_id']} does not exist")
        return action

    async def judge(state: ActionState) -> ActionState:
        action = await load(state)
        decision, remediation = await desk.judge(
            action, force_approval=bool(state.get("force_approval"))
        )
        stored, fresh = await actions.record_decision(
            db, action.id, decision, risk=decision.get("risk", "high")
        )
        if fresh:
            kind = stored.get("kind")
            reason = str(stored.get("reason", ""))
            risk = stored.get("risk")
            await desk.audit(
                action, f"action.{kind}", action.requester, reason, state.get("trace_id"), risk=risk
            )
        return {"decision": cast(PolicyVerdict, stored), "remediation": remediation}

    async def open_gate(state: ActionState) -> ActionState:
        action = await load(state)
        decision = _decision(state)
        token = state["run_id"]  # a run has one gate; its token is the run id (button values)
        await gates.open_gate(
            db,
            deps.gates,
            run_id=state["run_id"],
            incident_id=None,
            chat_id=action.chat_id,
            gate=GATE,
            token=token,
            named=tuple(str(p) for p in decision.get("approvers") or ()),
            required=int(decision.get("required_approvals") or 1),
            requester=action.requester,
        )
        return {"token": token, "gate_trace": tracing.here()}

    async def await_gate(state: ActionState) -> ActionState:
        decided = interrupt(GatePause(gate=GATE, token=state["token"]))
        return {"gate_decision": cast(GateDecision, dict(decided))}

    async def execute(state: ActionState) -> ActionState:
        action = await load(state)
        decision = _decision(state)
        step = Step(
            state["run_id"],
            "run",
            action.plugin,
            dict(action.params),
            dry_run=bool(decision.get("dry_run")),
            target=str(decision.get("target") or "") or None,
            auto=decision.get("kind") == "auto" and bool(state.get("remediation")),
            requested_by=action.requester,
        )

        async def starting() -> None:
            await actions.update(db, action.id, status="running")
            if action.card_message_id:
                await desk.show(action.id)

        async def act() -> ExecutionResult:
            return await desk.execute(action)

        return {"execution": await run_once(db, step, act, starting=starting)}

    async def verify(state: ActionState) -> ActionState:
        return {"verified": bool(_execution(state).get("ok"))}

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
    for name, node in (
        ("judge", judge),
        ("open_gate", open_gate),
        ("await_gate", await_gate),
        ("execute", execute),
        ("verify", verify),
        ("finish", finish),
    ):
        graph.add_node(name, traced(name, node))
    graph.add_edge(START, "judge")
    graph.add_conditional_edges("judge", after_judge, ["execute", "open_gate", "finish"])
    graph.add_edge("open_gate", "await_gate")
    graph.add_conditional_edges("await_gate", after_gate, ["execute", "finish"])
    graph.add_edge("execute", "verify")
    graph.add_edge("verify", "finish")
    graph.add_edge("finish", END)
    return graph


class Node(Protocol):
    """A node of the graph (LangGraph passes the state by the name `state`)."""

    def __call__(self, state: ActionState) -> Awaitable[ActionState]: ...


def traced(name: str, node: Node) -> Node:
    """`node` as a span of the run's trace; the resumed gate links to the step that opened it."""

    async def run(state: ActionState) -> ActionState:
        opened = state.get("gate_trace", "") if name == "await_gate" else ""
        attributes = {
            "larkops.run_id": state.get("run_id"),
            "larkops.action": state.get("action_id"),
        }
        with tracing.span(
            f"action.{name}", attributes, links=(opened,) if opened else (), quiet=(GraphBubbleUp,)
        ):
            return await node(state)

    run.__name__ = run.__qualname__ = name
    return run


# the state's payloads as their types: a missing one reads as empty, as before
def _decision(state: ActionState) -> PolicyVerdict:
    return state.get("decision") or cast(PolicyVerdict, {})


def _execution(state: ActionState) -> ExecutionResult:
    return state.get("execution") or cast(ExecutionResult, {})


def _gate(state: ActionState) -> GateDecision:
    return state.get("gate_decision") or cast(GateDecision, {})


# routing: read state, write nothing -------------------------------------------------------


def after_judge(state: ActionState) -> str:
    kind = _decision(state).get("kind")
    return {"auto": "execute", "approve": "open_gate"}.get(str(kind), "finish")


def after_gate(state: ActionState) -> str:
    approved = _gate(state).get("decision") == "approve"
    return "execute" if approved else "finish"


def outcome_of(state: ActionState) -> ActionStatus:
    """The action's final status, from what happened in its run."""
    if "execution" in state:
        return "succeeded" if state.get("verified") else "failed"
    if _decision(state).get("kind") not in ("auto", "approve"):
        return "refused"
    decided = _gate(state).get("decision")
    return "rejected" if decided == "reject" else "expired"
