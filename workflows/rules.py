"""The `rules` advisor: runbooks and plugins diagnose, propose and verify; the policy engine
judges. No model is involved, so the whole incident loop works offline and in tests.

Usage::

    advisor = RulesAdvisor(registry, PolicyEngine(config, registry=registry), book, db)
"""

from __future__ import annotations

import logging
from typing import Any, cast

from plugins.contract import AlertContext, PluginContext
from plugins.execution import call_of, execute
from plugins.policy import PolicyEngine
from plugins.registry import PluginRegistry
from plugins.runbooks import (
    RunbookBook,
    diagnose_with_rules,
    finding_of,
    propose_with_rules,
    verify_with_rules,
)
from storage.database import Database
from workflows.payloads import (
    Diagnosis,
    ExecutionResult,
    PolicyVerdict,
    Proposal,
    Verification,
)
from workflows.ports import Memory
from workflows.verdicts import judge

log = logging.getLogger(__name__)


class RulesAdvisor:
    def __init__(
        self,
        registry: PluginRegistry,
        policy: PolicyEngine,
        book: RunbookBook,
        db: Database,
        *,
        verify_attempts: int = 3,
        verify_interval: float = 5.0,
        memory: Memory | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.book = book
        self.db = db
        self.verify_attempts = verify_attempts
        self.verify_interval = verify_interval
        self.memory = memory

    async def diagnose(
        self,
        alert: AlertContext,
        *,
        incident_id: int,
        run_id: str,
        similar: list[dict[str, Any]] | None = None,
    ) -> Diagnosis:
        """The runbook's diagnosis; `similar` when the caller already recalled them."""
        ctx = PluginContext(alert=alert, incident_id=incident_id, run_id=run_id)
        found = await diagnose_with_rules(
            self.book, self.registry, alert, policy=self.policy, ctx=ctx
        )
        return {
            "summary": found.summary,
            "hypotheses": [list(h) for h in found.hypotheses],
            "evidence": [list(e) for e in found.evidence],
            "next_checks": list(found.next_checks),
            "provider": found.provider,
            "partial": found.partial,
            "codes": found.codes,
            "similar": similar if similar is not None else await self.recall(incident_id),
        }

    async def propose(
        self,
        alert: AlertContext,
        diagnosis: Diagnosis,
        *,
        incident_id: int | None = None,
        run_id: str | None = None,
    ) -> Proposal | None:
        proposal = await propose_with_rules(self.book, self.registry, alert)
        if proposal is None:
            return None
        return {
            "plugin": proposal.plugin,
            "params": dict(proposal.params),
            "title_zh": proposal.title_zh,
            "title_en": proposal.title_en,
            "steps": list(proposal.steps),
            "rationale": proposal.rationale,
        }

    async def evaluate(self, proposal: Proposal, alert: AlertContext) -> PolicyVerdict:
        name = str(proposal.get("plugin", ""))
        plugin = self.registry.get(name)
        params = dict(proposal.get("params") or {})
        if plugin is None:
            return {
                "kind": "refuse",
                "risk": "critical",
                "required_approvals": 0,
                "reason": f"plugin {name!r} is not registered",
            }
        hint = str(proposal.get("risk_hint") or "") or None  # a model's: may raise, never lower
        decided = await judge(
            self.db, self.policy, plugin.spec, params, alert=alert, risk_hint=hint
        )
        verdict = cast(PolicyVerdict, decided.as_json())
        verdict["call"] = call_of(self.registry, name, params)
        return verdict

    async def execute(
        self, proposal: Proposal, *, incident_id: int, run_id: str, dry_run: bool = False
    ) -> ExecutionResult:
        ctx = PluginContext(incident_id=incident_id, run_id=run_id, dry_run=dry_run)
        result = await execute(
            self.registry, str(proposal.get("plugin", "")), ctx, dict(proposal.get("params") or {})
        )
        found = finding_of(result)
        return {
            "ok": result.ok,
            "summary": result.summary,
            "output": result.output,
            "data": {**dict(result.data), **({"finding": found} if found else {})},
        }

    async def verify(
        self, alert: AlertContext, proposal: Proposal, execution: ExecutionResult
    ) -> Verification:
        checked = await verify_with_rules(
            self.book,
            self.registry,
            alert,
            policy=self.policy,
            attempts=self.verify_attempts,
            interval=self.verify_interval,
        )
        if checked is None:
            # no verify step for this alert: the fix's own result is all there is to go on
            return {
                "ok": bool(execution.get("ok")),
                "summary": "no verification step; relying on the fix's own result",
                "finding": {"code": "no_verify_step", "values": {}},
            }
        return {"ok": checked.ok, "summary": checked.summary, "finding": checked.finding}

    async def recall(self, incident_id: int, limit: int = 3) -> list[dict[str, Any]]:
        """Similar past incidents (for the card and the model); empty without memory."""
        if self.memory is None:
            return []
        try:
            found = await self.memory.similar(
                incident_id, limit=limit, exclude_incident=incident_id
            )
        except Exception as exc:  # memory is a help, never a reason to stop a diagnosis
            log.warning("memory: recall for incident %s failed: %s", incident_id, exc)
            return []
        return [
            {
                "incident_id": item.incident_id,
                "title": item.title,
                "similarity": round(float(item.similarity), 3),
                "fix": item.fix,
                "outcome": item.outcome,
            }
            for item in found
            if item.incident_id is not None
        ]

    async def remember(self, incident_id: int) -> None:
        if self.memory is None:
            return
        try:
            await self.memory.remember_incident(incident_id)
        except Exception as exc:
            log.warning("memory: remembering incident %s failed: %s", incident_id, exc)
