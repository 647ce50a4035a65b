"""The diagnosis agent: a tool-calling loop over the enabled diagnostic plugins, within caps.

Tools are the registry's enabled *diagnostic* plugins (their parameter JSON schemas are the
tool schemas); a call is validated by the plugin's model and judged by the policy (fences,
quotas) before it runs, and a remediation plugin is never offered nor run, whatever the model
asks. Caps: `max_steps` model rounds, the incident and daily token budgets and the wall-clock
deadline (see `workflows.llm.guard`). When a cap stops the loop, the model is asked once more,
without tools, for its answer; if even that cannot be had the result is built from the tool
results gathered so far, marked partial with the reason. A final answer that does not
validate is sent back once with the validation error; a second bad answer is a failure (the
caller then uses the `rules` diagnosis).

Usage::

    agent = DiagnosisAgent(guard, registry, policy, scrub, language="zh")
    outcome = await agent.diagnose(alert, incident_id=7, run_id=run, timeline=[], similar=[])
    outcome.findings, outcome.partial, outcome.reason, outcome.calls
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plugins.contract import AlertContext, PluginContext
from plugins.execution import execute
from plugins.policy import PolicyEngine
from plugins.registry import PluginRegistry
from plugins.runbooks import finding_of
from workflows.llm.findings import AnswerError, EvidenceItem, Findings, parse_findings
from workflows.llm.guard import ModelGuard, ModelUnavailable
from workflows.llm.model import Message, Reply, ToolCall, ToolSpec
from workflows.llm.prompt import Scrubber, diagnosis_messages, tool_result_text

MAX_CALLS_PER_STEP = 4
FINAL_NUDGE = "Stop calling tools now. Answer with the JSON object only, from what you have seen."


@dataclass(frozen=True)
class CallRecord:
    """One tool call the model made and what came of it."""

    id: str
    tool: str
    ok: bool
    summary: str
    ran: bool = True  # False: refused before it ran (evidence may not cite it)
    # the summary as {"code", "values"} (`card.finding.<code>`), for the chat to word; {} when
    # the plugin gave no code
    finding: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class AgentOutcome:
    """The diagnosis (None: the model failed; use rules), and how it went."""

    findings: Findings | None
    partial: bool = False
    reason: str = ""
    steps: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    tokens_in: int = 0  # what the model's answers cost, all rounds together
    tokens_out: int = 0


class DiagnosisAgent:
    def __init__(
        self,
        guard: ModelGuard,
        registry: PluginRegistry,
        policy: PolicyEngine,
        scrub: Scrubber,
        *,
        language: str = "zh",
    ) -> None:
        self.guard = guard
        self.registry = registry
        self.policy = policy
        self.scrub = scrub
        self.language = language
        self._tools: list[ToolSpec] = []
        self._tools_key: tuple[str, ...] | None = None

    def tools(self) -> list[ToolSpec]:
        """The enabled diagnostic plugins as tools (nothing that changes anything); the schemas
        are built once per set of enabled plugins."""
        specs = self.registry.specs("diagnostic")
        key = tuple(spec.name for spec in specs)
        if key != self._tools_key:
            self._tools = [
                ToolSpec(
                    name=spec.name,
                    description=f"{spec.title_en}: {spec.description_en}"[:500],
                    parameters=spec.params.model_json_schema(),
                )
                for spec in specs
            ]
            self._tools_key = key
        return list(self._tools)

    async def diagnose(
        self,
        alert: AlertContext,
        *,
        incident_id: int | None,
        run_id: str | None,
        timeline: list[str],
        similar: list[str],
        deadline: float | None = None,
    ) -> AgentOutcome:
        """The model's diagnosis within `deadline` (a `time.monotonic()` instant; by default
        `wall_seconds` from now)."""
        config = self.guard.config
        until = time.monotonic() + config.wall_seconds if deadline is None else deadline
        messages = diagnosis_messages(
            alert, timeline=timeline, similar=similar, scrub=self.scrub, language=self.language
        )
        tools = self.tools()
        outcome = AgentOutcome(findings=None)
        retried = False

        async def ask(with_tools: bool) -> Reply:
            reply = await self.guard.complete(
                messages,
                tools=tools if with_tools else (),
                purpose="diagnosis",
                incident_id=incident_id,
                run_id=run_id,
                deadline=until,
            )
            outcome.steps += 1  # a round the model actually answered
            outcome.tokens_in += reply.usage.input_tokens
            outcome.tokens_out += reply.usage.output_tokens
            return reply

        stop_reason = ""
        rounds = 0
        while True:
            if rounds >= config.max_steps:
                stop_reason = f"the step limit ({config.max_steps}) was reached"
                break
            rounds += 1
            try:
                reply = await ask(with_tools=True)
            except ModelUnavailable as exc:
                stop_reason = str(exc)
                break
            if reply.tool_calls:
                messages.append(Message("assistant", reply.text, tool_calls=reply.tool_calls))
                for call in reply.tool_calls[:MAX_CALLS_PER_STEP]:
                    text = await self._run_tool(call, alert, incident_id, run_id, outcome)
                    messages.append(Message("tool", text, tool_call_id=call.id, name=call.name))
                for call in reply.tool_calls[MAX_CALLS_PER_STEP:]:
                    skipped = f"not run: at most {MAX_CALLS_PER_STEP} tool calls per step"
                    messages.append(Message("tool", skipped, tool_call_id=call.id, name=call.name))
                continue
            try:
                outcome.findings = parse_findings(reply.text, self._known(outcome))
                return outcome
            except AnswerError as exc:
                if retried:
                    outcome.reason = f"the model's answer was invalid twice: {exc}"
                    return outcome
                retried = True
                messages.append(Message("assistant", reply.text[:4000]))
                messages.append(
                    Message(
                        "user",
                        f"Your answer was not valid: {exc}. Reply with the JSON object only.",
                    )
                )
        return await self._best_partial(stop_reason, messages, ask, outcome)

    async def _best_partial(
        self, stop_reason: str, messages: list[Message], ask: Any, outcome: AgentOutcome
    ) -> AgentOutcome:
        """A cap stopped the loop: one last answer without tools, else what the tools showed."""
        outcome.partial, outcome.reason = True, stop_reason
        if outcome.calls and "budget" not in stop_reason and "time" not in stop_reason:
            messages.append(Message("user", FINAL_NUDGE))
            try:
                reply = await ask(with_tools=False)
                outcome.findings = parse_findings(reply.text, self._known(outcome))
                return outcome
            except (ModelUnavailable, AnswerError):
                pass
        ran = [c for c in outcome.calls if c.ran]
        if not ran:
            return outcome  # nothing learnt: the caller uses the rules diagnosis
        failing = [c for c in ran if not c.ok]
        outcome.findings = Findings(
            summary=(f"Incomplete diagnosis ({stop_reason}). " + (failing or ran)[0].summary)[:800],
            hypotheses=[],
            evidence=[
                EvidenceItem(tool_call_id=c.id, text=f"{c.tool}: {c.summary}"[:600])
                for c in ran[:12]
            ],
            next_checks=[],
        )
        return outcome

    async def _run_tool(
        self,
        call: ToolCall,
        alert: AlertContext,
        incident_id: int | None,
        run_id: str | None,
        outcome: AgentOutcome,
    ) -> str:
        """Run one diagnostic tool call under policy; the text the model gets back."""
        record, text = await run_diagnostic(
            self.registry, self.policy, self.scrub, call, alert, incident_id, run_id
        )
        outcome.calls.append(record)
        return text

    @staticmethod
    def _known(outcome: AgentOutcome) -> dict[str, str]:
        return {call.id: call.tool for call in outcome.calls if call.ran}


async def run_diagnostic(
    registry: PluginRegistry,
    policy: PolicyEngine,
    scrub: Scrubber,
    call: ToolCall,
    alert: AlertContext | None,
    incident_id: int | None = None,
    run_id: str | None = None,
) -> tuple[CallRecord, str]:
    """Run a model's call of a diagnostic plugin, if it is one and policy lets it run by itself:
    what came of it, and the (redacted, fenced) text the model gets back. A remediation plugin,
    an unknown or disabled one, arguments that are not an object and anything policy would not
    run automatically are refused without running."""

    def refused(reason: str, code: str, **values: str) -> tuple[CallRecord, str]:
        finding = {"code": code, "values": {"plugin": call.name[:64], **values}}
        record = CallRecord(call.id, call.name, False, reason, ran=False, finding=finding)
        return record, tool_result_text({"ok": False, "error": reason}, scrub)

    plugin = registry.get(call.name)
    if plugin is None or not registry.is_enabled(call.name) or plugin.spec.category != "diagnostic":
        code = (
            "plugin_unknown"
            if plugin is None
            else "not_diagnostic"
            if plugin.spec.category != "diagnostic"
            else "plugin_disabled"
        )
        return refused(f"there is no diagnostic tool named {call.name[:64]!r}", code)
    if call.arguments is None:
        return refused("the arguments were not a JSON object", "tool_bad_arguments")
    decision = policy.evaluate(plugin.spec, dict(call.arguments), alert=alert)
    if decision.kind != "auto":
        # the policy's reason is worded in the chat's language already
        why = f"{decision.reason} {decision.detail}".rstrip()
        return refused(f"not run: {why}", "tool_not_auto", why=decision.reason)
    ctx = PluginContext(alert=alert, incident_id=incident_id, run_id=run_id)
    result = await execute(registry, call.name, ctx, dict(call.arguments))
    data = json.dumps(dict(result.data), default=str)
    shown = {
        "ok": result.ok,
        "summary": result.summary,
        "evidence": list(result.evidence),
        "data": json.loads(data) if len(data) < 4000 else {"truncated": True},
        "output": result.output[:2000],
    }
    record = CallRecord(call.id, call.name, result.ok, result.summary, finding=finding_of(result))
    return record, tool_result_text(shown, scrub)
