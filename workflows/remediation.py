"""The remediation every run shares, an incident's and an action's (`/run`, a scheduled fix, a
fix the chat agent proposed) alike: one LangGraph subgraph,

    policy → (auto) execute | (approve) open_gate → await_gate ⏸ → execute | (refuse) end
    execute → verify (when the plugin ran and said ok) → end

parameterised by a `Remedy` (what differs: how the policy is asked, the gate and its card, the
incident that resolved meanwhile, the plugin run, how the fix is verified, the events written).
The incident graph and the action graph each invoke it from one node (`remediate`) with their
own config: its checkpoints are kept in that node's namespace, its gate's `interrupt()` pauses
the whole run, and a resumed or reclaimed run re-enters the node and goes on inside the
subgraph from its last checkpoint. `entry` starts it where the handed-in state stands, so a run
an earlier version paused or left between these steps (checkpointed without the subgraph) goes
on from its own node names, which the parents keep as aliases of `remediate`.

A fix is run at most once per run, whatever crashes and replays happen around it.

The step is claimed in `executions` (unique run + step) before the plugin starts. A replay
finds the claim: a finished run gives its recorded result back; a claim still `running` means
the process died while the plugin ran, and the run is reported as interrupted, outcome
unknown, never started a second time.

Usage::

    steps = build_remediation(db, remedy).compile()         # the parent's checkpointer is used
    done = await steps.ainvoke(entry_state, config)          # from the parent's node
    result = await run_once(db, Step(run_id, "execute", "command", params), act=run_the_plugin)
    result["ok"], result["summary"], result.get("interrupted")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from storage import executions, tracing
from storage.database import Database
from workflows.escalation import INTERRUPTED
from workflows.payloads import (
    ExecutionResult,
    GateDecision,
    GatePause,
    PolicyVerdict,
    RemediationState,
    Verification,
)

NODES = ("policy", "open_gate", "await_gate", "execute", "verify")
S = TypeVar("S")


class Node(Protocol[S]):
    """A node of a graph (LangGraph passes the state by the name `state`)."""

    def __call__(self, state: S) -> Awaitable[S]: ...


RemediationStep = Node[RemediationState]  # a step of the subgraph


@dataclass(frozen=True)
class Step:
    """One claimable plugin run of a workflow run."""

    run_id: str
    name: str  # the step's name in `executions` ("execute" for incidents, "run" for actions)
    plugin: str
    params: dict[str, Any] = field(default_factory=dict)
    incident_id: int | None = None
    dry_run: bool = False
    target: str | None = None
    auto: bool = False  # ran without a person (the global auto budget counts it)
    requested_by: str | None = None


async def run_once(
    db: Database,
    step: Step,
    act: Callable[[], Awaitable[ExecutionResult]],
    *,
    starting: Callable[[], Awaitable[None]] | None = None,
) -> ExecutionResult:
    """Run `act` (the plugin) unless an earlier attempt of this run already started it; the
    result as `{"ok", "summary", "output", "data"}`, with `"interrupted": True` when an earlier
    attempt died mid-run. `starting` is called once, just before the plugin starts."""
    row, fresh = await executions.begin_execution(
        db,
        step.run_id,
        step.name,
        step.plugin,
        dict(step.params),
        incident_id=step.incident_id,
        dry_run=step.dry_run,
        target=step.target,
        auto=step.auto,
        requested_by=step.requested_by,
    )
    if fresh:
        if starting is not None:
            await starting()
        result = await act()
        await executions.finish_execution(
            db,
            row.id,
            ok=bool(result.get("ok")),
            summary=str(result.get("summary", "")),
            output=str(result.get("output", "")),
            data=dict(result.get("data") or {}),
        )
        return result
    if row.status == "running":
        # an earlier attempt died while the plugin ran: never run it a second time
        await executions.finish_execution(
            db, row.id, ok=False, summary=INTERRUPTED, error="interrupted"
        )
        return {"ok": False, "summary": INTERRUPTED, "output": "", "interrupted": True}
    ended: ExecutionResult = {
        "ok": row.status == "succeeded",
        "summary": row.summary or "",
        "output": row.output or "",
        "data": dict(row.data or {}),
    }
    if row.error == "interrupted":  # an earlier attempt found it cut short
        ended["interrupted"] = True
    return ended


class Remedy(Protocol):
    """What differs between the runs that share the remediation."""

    @property
    def gate(self) -> str:
        """The gate's name ("proposal" for an incident, "action" for an action)."""

    async def judge(self, state: RemediationState) -> tuple[PolicyVerdict, bool]:
        """The policy's decision, kept and audited; and whether the plugin is a fix (changes
        something: the auto budget counts its auto runs)."""

    async def open_gate(self, state: RemediationState) -> str:
        """Open the approval gate (`workflows.gates`) and show it; its token, "" when the
        subject is over and nobody is asked."""

    async def halted(self, state: RemediationState) -> bool:
        """The subject ended meanwhile (an incident resolved): the fix is not run."""

    async def step(self, state: RemediationState) -> Step:
        """The plugin run, as claimed in `executions`."""

    async def starting(self, state: RemediationState) -> None:
        """Just before the plugin starts (once): statuses and the card."""

    async def act(self, state: RemediationState) -> ExecutionResult:
        """Run the plugin."""

    async def executed(self, state: RemediationState, result: ExecutionResult) -> None:
        """After the plugin ran (or was found cut short): the audit."""

    async def verify(self, state: RemediationState) -> Verification:
        """Whether the fix worked: an incident checks its alert again, an action judges the
        plugin's own result."""

    def node(self, name: str, step: RemediationStep) -> RemediationStep:
        """`step` as the run counts and traces it (its span, its metric labels)."""


def build_remediation(db: Database, remedy: Remedy) -> StateGraph[RemediationState]:
    async def policy(state: RemediationState) -> RemediationState:
        verdict, fix = await remedy.judge(state)
        return {"verdict": verdict, "fix": fix}

    async def open_gate(state: RemediationState) -> RemediationState:
        return {"token": await remedy.open_gate(state), "gate_trace": tracing.here()}

    async def await_gate(state: RemediationState) -> RemediationState:
        return {"decision": await_decision(remedy.gate, state.get("token", ""))}

    async def execute(state: RemediationState) -> RemediationState:
        if await remedy.halted(state):
            return {"halted": "resolved"}

        async def act() -> ExecutionResult:
            return await remedy.act(state)

        async def starting() -> None:
            await remedy.starting(state)

        result = await run_once(db, await remedy.step(state), act, starting=starting)
        await remedy.executed(state, result)
        return {"execution": result}

    async def verify(state: RemediationState) -> RemediationState:
        return {"verification": await remedy.verify(state)}

    graph: StateGraph[RemediationState] = StateGraph(RemediationState)
    for name, step in (
        ("policy", policy),
        ("open_gate", open_gate),
        ("await_gate", await_gate),
        ("execute", execute),
        ("verify", verify),
    ):
        graph.add_node(name, remedy.node(name, step))
    graph.add_conditional_edges(START, entry, [*NODES, END])
    graph.add_conditional_edges("policy", after_policy, ["execute", "open_gate", END])
    graph.add_edge("open_gate", "await_gate")
    graph.add_conditional_edges("await_gate", after_gate, ["execute", END])
    graph.add_conditional_edges("execute", after_execute, ["verify", END])
    graph.add_edge("verify", END)
    return graph


def await_decision(gate: str, token: str) -> GateDecision:
    """A gate's one `interrupt()`: the decision the run is resumed with; "resolved" at once
    when no gate was opened (the incident is over)."""
    if not token:
        return {"decision": "resolved", "by": []}
    return cast(GateDecision, dict(interrupt(GatePause(gate=gate, token=token))))


# routing: read state, write nothing -------------------------------------------------------


def entry(state: RemediationState) -> str:
    """Where the steps start: at the policy, or where the handed-in state stands (a run an
    earlier version checkpointed between these steps)."""
    if "verification" in state:
        return END
    if "execution" in state or "halted" in state:
        return after_execute(state)
    if "decision" in state:
        return after_gate(state)
    if "token" in state:
        return "await_gate"
    if "verdict" in state:
        return after_policy(state)
    return "policy"


def verdict_of(state: RemediationState) -> PolicyVerdict:
    """The policy's decision (empty before it was asked)."""
    return state.get("verdict") or cast(PolicyVerdict, {})


def after_policy(state: RemediationState) -> str:
    kind = verdict_of(state).get("kind")
    return {"auto": "execute", "approve": "open_gate"}.get(str(kind), END)


def after_gate(state: RemediationState) -> str:
    decision = state.get("decision")
    return "execute" if decision and decision.get("decision") == "approve" else END


def after_execute(state: RemediationState) -> str:
    if state.get("halted"):
        return END
    execution = state.get("execution")
    return "verify" if execution and execution.get("ok") else END
