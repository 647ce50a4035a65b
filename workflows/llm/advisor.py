"""The model-backed advisor: the model diagnoses and may suggest a fix; rules back it up.

Diagnosis: the agent (`workflows.llm.agent`) with the alert, its recent timeline and similar
past incidents; when the model is down, over budget or answers nonsense twice, the `rules`
diagnosis is used and says why. Proposal: a runbook's fix when one matches (operators' word
first); otherwise the model may suggest one plugin from the enabled remediation catalogue,
which is validated by the plugin's parameter model and then judged by policy like any other
action (its risk hint can raise the risk, never lower it). Execution and verification are the
rules advisor's.

With a council (`llm.council`, two or more models) the diagnosis asks every model in parallel
(`workflows.llm.council`) and shows the merged view; it falls back to rules only when no model
answered. Proposals stay with the main model.

Usage::

    advisor = ModelAdvisor(rules, guard, agent, scrub, language="zh", council=council)
"""

from __future__ import annotations

import json
from typing import Any

from plugins.contract import AlertContext, InvalidParams, validate_params
from storage import incidents
from workflows.llm.agent import AgentOutcome, DiagnosisAgent
from workflows.llm.council import Council, Verdict
from workflows.llm.findings import AnswerError, parse_suggestion
from workflows.llm.guard import ModelGuard, ModelUnavailable
from workflows.llm.prompt import Scrubber, proposal_messages
from workflows.payloads import (
    Diagnosis,
    ExecutionResult,
    PolicyVerdict,
    Proposal,
    Verification,
)
from workflows.rules import RulesAdvisor

TIMELINE_ENTRIES = 12


class ModelAdvisor:
    def __init__(
        self,
        rules: RulesAdvisor,
        guard: ModelGuard,
        agent: DiagnosisAgent,
        scrub: Scrubber,
        *,
        language: str = "zh",
        council: Council | None = None,
    ) -> None:
        self.rules = rules
        self.guard = guard
        self.agent = agent
        self.scrub = scrub
        self.language = language
        self.council = council

    @property
    def provider(self) -> str:
        return f"{self.guard.model.provider}:{self.guard.model.model}"

    async def diagnose(self, alert: AlertContext, *, incident_id: int, run_id: str) -> Diagnosis:
        similar = await self.rules.recall(incident_id)
        timeline = await self._timeline(incident_id)
        notes = [
            f"#{s['incident_id']} {s['title']} (similarity {s['similarity']:.2f}); "
            f"fixed by: {s.get('fix') or 'unknown'}; outcome: {s.get('outcome') or 'unknown'}"
            for s in similar
        ]
        if self.council is not None:
            verdict = await self.council.convene(
                key=f"diagnosis:{run_id}",
                purpose="diagnosis",
                alert=alert,
                incident_id=incident_id,
                run_id=run_id,
                timeline=timeline,
                similar=notes,
            )
            if verdict.answered:
                return council_json(verdict, similar)
            reason = "no model of the council answered"
        else:
            outcome = await self.agent.diagnose(
                alert, incident_id=incident_id, run_id=run_id, timeline=timeline, similar=notes
            )
            if outcome.findings is not None:
                return self._as_json(outcome, similar)
            reason = outcome.reason or "the model gave no diagnosis"
        fallback = await self.rules.diagnose(
            alert, incident_id=incident_id, run_id=run_id, similar=similar
        )
        fallback["fallback"] = reason
        return fallback

    async def propose(
        self,
        alert: AlertContext,
        diagnosis: Diagnosis,
        *,
        incident_id: int | None = None,
        run_id: str | None = None,
    ) -> Proposal | None:
        from_runbook = await self.rules.propose(alert, diagnosis)
        if from_runbook is not None:
            return from_runbook
        catalogue = [
            {
                "plugin": spec.name,
                "title": spec.title_en,
                "description": spec.description_en,
                "risk": spec.risk,
                "parameters": spec.params.model_json_schema(),
            }
            for spec in self.rules.registry.specs("remediation")
        ]
        if not catalogue:
            return None
        messages = proposal_messages(
            alert, diagnosis, catalogue, scrub=self.scrub, language=self.language
        )
        try:
            reply = await self.guard.complete(
                messages,
                purpose="proposal",
                incident_id=incident_id,
                run_id=run_id,
                deadline=_deadline(self.guard),
            )
            suggestion = parse_suggestion(reply.text)
        except (ModelUnavailable, AnswerError):
            return None
        if suggestion.plugin is None:
            return None
        plugin = self.rules.registry.get(suggestion.plugin)
        if (
            plugin is None
            or plugin.spec.category != "remediation"
            or not self.rules.registry.is_enabled(suggestion.plugin)
        ):
            return None  # only the catalogue exists
        try:
            model = validate_params(plugin.spec, suggestion.params)
        except InvalidParams:
            return None
        return {
            "plugin": plugin.spec.name,
            "params": model.model_dump(mode="json"),
            "title_zh": plugin.spec.title_zh,
            "title_en": plugin.spec.title_en,
            "steps": [],
            "rationale": suggestion.rationale,
            "risk_hint": suggestion.risk_hint,
            "source": self.provider,
        }

    async def evaluate(self, proposal: Proposal, alert: AlertContext) -> PolicyVerdict:
        return await self.rules.evaluate(proposal, alert)

    async def execute(
        self, proposal: Proposal, *, incident_id: int, run_id: str, dry_run: bool = False
    ) -> ExecutionResult:
        return await self.rules.execute(
            proposal, incident_id=incident_id, run_id=run_id, dry_run=dry_run
        )

    async def verify(
        self, alert: AlertContext, proposal: Proposal, execution: ExecutionResult
    ) -> Verification:
        return await self.rules.verify(alert, proposal, execution)

    async def remember(self, incident_id: int) -> None:
        await self.rules.remember(incident_id)

    async def _timeline(self, incident_id: int) -> list[str]:
        events = await incidents.timeline(self.rules.db, incident_id, limit=200)
        recent = list(events)[-TIMELINE_ENTRIES:]
        return [f"{e.created_at:%H:%M:%S} {e.kind} {e.actor}: {e.message}"[:300] for e in recent]

    def _as_json(self, outcome: AgentOutcome, similar: list[dict[str, Any]]) -> Diagnosis:
        assert outcome.findings is not None
        tools = {call.id: call.tool for call in outcome.calls}
        found = outcome.findings
        return {
            "summary": self.scrub.text(found.summary),
            "hypotheses": [[self.scrub.text(h.cause), h.confidence] for h in found.hypotheses],
            "evidence": [
                [tools.get(e.tool_call_id or "", "model"), self.scrub.text(e.text)]
                for e in found.evidence
            ],
            "next_checks": [self.scrub.text(c) for c in found.next_checks],
            "provider": self.provider,
            "partial": outcome.partial,
            "partial_reason": outcome.reason,
            "tool_calls": [[c.tool, c.ok] for c in outcome.calls],
            "similar": json.loads(json.dumps(similar, default=str)),
        }


def council_json(verdict: Verdict, similar: list[dict[str, Any]]) -> Diagnosis:
    """A council's verdict as a diagnosis: the merged view, each member under `council`."""
    merged = dict(verdict.merged)
    answered, asked = int(merged.get("answered", 0)), int(merged.get("asked", 0))
    return {
        "summary": str(merged.get("summary", "")),
        "hypotheses": [[h["cause"], h["confidence"]] for h in merged.get("hypotheses") or []],
        "evidence": list(merged.get("evidence") or []),
        "next_checks": list(merged.get("next_checks") or []),
        "provider": "council",
        "partial": answered < asked,
        "council": {
            "agreement": merged.get("agreement", 0.0),
            "confidence": merged.get("confidence", 0.0),
            "answered": answered,
            "asked": asked,
            "hypotheses": list(merged.get("hypotheses") or []),
            "members": [dict(member) for member in verdict.members],
        },
        "similar": json.loads(json.dumps(similar, default=str)),
    }


def _deadline(guard: ModelGuard) -> float:
    import time

    return time.monotonic() + guard.config.wall_seconds
