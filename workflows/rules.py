"""The `rules` advisor: runbooks and plugins diagnose, propose and verify; the policy engine
judges. No model is involved, so the whole incident loop works offline and in tests.

Usage::

    advisor = RulesAdvisor(registry, PolicyEngine(config, registry=registry), book, db)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from plugins.contract import AlertContext, PluginContext
from plugins.execution import execute
from plugins.policy import PolicyEngine
from plugins.registry import PluginRegistry
from plugins.runbooks import (
    RunbookBook,
    diagnose_with_rules,
    propose_with_rules,
    verify_with_rules,
)
from storage.database import Database
from storage.models import Execution
from workflows.ports import JSON


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
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.book = book
        self.db = db
        self.verify_attempts = verify_attempts
        self.verify_interval = verify_interval

    async def diagnose(self, alert: AlertContext, *, incident_id: int, run_id: str) -> JSON:
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
        }

    async def propose(self, alert: AlertContext, diagnosis: JSON) -> JSON | None:
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

    async def evaluate(self, proposal: JSON, alert: AlertContext) -> JSON:
        name = str(proposal.get("plugin", ""))
        plugin = self.registry.get(name)
        if plugin is None or not self.registry.is_enabled(name):
            return {
                "kind": "refuse",
                "risk": "critical",
                "required_approvals": 0,
                "reason": f"plugin {name!r} is not enabled",
            }
        params = dict(proposal.get("params") or {})
        decided = self.policy.evaluate(
            plugin.spec,
            params,
            alert=alert,
            recent_executions=await self._recent(name, params),
        )
        return {
            "kind": decided.kind,
            "risk": decided.risk,
            "required_approvals": decided.required_approvals,
            "reason": decided.reason,
        }

    async def _recent(self, plugin: str, params: dict[str, Any]) -> int:
        """Executions of the same action in the last hour (for the per-target quota)."""
        since = datetime.now(UTC) - timedelta(hours=1)
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Execution)
                .where(
                    Execution.plugin == plugin,
                    Execution.params == params,
                    Execution.created_at > since,
                )
            )
        return int(count or 0)

    async def execute(self, proposal: JSON, *, incident_id: int, run_id: str) -> JSON:
        ctx = PluginContext(incident_id=incident_id, run_id=run_id)
        result = await execute(
            self.registry, str(proposal.get("plugin", "")), ctx, dict(proposal.get("params") or {})
        )
        return {
            "ok": result.ok,
            "summary": result.summary,
            "output": result.output,
            "data": dict(result.data),
        }

    async def verify(self, alert: AlertContext, proposal: JSON, execution: JSON) -> JSON:
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
            }
        return {"ok": checked.ok, "summary": checked.summary}
