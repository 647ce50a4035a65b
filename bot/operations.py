"""Plugin runs asked for in the chat (`/run`): judged by the same policy as an incident's fix.

A diagnostic run, or a remediation the policy lets run automatically, runs at once; a
remediation that needs people gets an approval card (the same signed Approve / Reject buttons
as an incident gate, with no incident id) and runs once the gate is decided; a refused one runs
never. Every step is an `actions` row and an audit event; the run itself is an `executions` row
claimed once per action, so a replayed click never runs anything twice.

Usage::

    desk = OperationsDesk(settings, db, api, toolkit, signing_key)
    outcome = await desk.request(chat_id, "ou_1", "pg_vacuum", {"table": "orders"}, trace_id)
    view = await desk.view(outcome.action.id)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot.config import Settings
from bot.lark.api import LarkApi
from bot.logs import get_logger
from bot.roles import gate_policy
from cards.gates import gate_buttons
from cards.operations import ActionView, action_card
from cards.texts import texts
from plugins.contract import PluginContext
from plugins.execution import execute
from plugins.policy import PolicyDecision, PolicyEngine
from plugins.registry import PluginRegistry
from plugins.runbooks import RunbookBook
from storage import approvals, executions
from storage.database import Database
from storage.incidents import record_event
from storage.models import Action, Approval
from storage.statuses import ActionStatus
from workflows import gates
from workflows.verdicts import judge

log = get_logger(__name__)
GATE = "action"


@dataclass(frozen=True)
class Toolkit:
    """The plugins, the policy that fences them and the runbooks that use them."""

    registry: PluginRegistry
    policy: PolicyEngine
    book: RunbookBook


@dataclass(frozen=True)
class Outcome:
    """What a request did: the action row and the policy's decision."""

    action: Action
    decision: PolicyDecision
    gate: Approval | None = None


class OperationsDesk:
    def __init__(
        self, settings: Settings, db: Database, api: LarkApi, toolkit: Toolkit, signing_key: bytes
    ) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.db = db
        self.api = api
        self.toolkit = toolkit
        self.gates = gate_policy(settings)
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(
        self,
        chat_id: str,
        requester: str,
        plugin: str,
        params: Mapping[str, Any],
        trace_id: str | None = None,
        *,
        force_approval: bool = False,
    ) -> Outcome:
        """Judge a run and act on the judgement: run now, open a gate, or refuse.
        `force_approval` (scheduled fixes): a fix the policy would run by itself waits for a
        person all the same."""
        found = self.toolkit.registry.get(plugin)
        assert found is not None, "the caller checks the plugin exists"
        spec = found.spec
        decision = await judge(self.db, self.toolkit.policy, spec, params, alert=None)
        if spec.category == "diagnostic" and decision.kind == "approve":
            # a read-only check never waits for people; fences, quotas and validity still apply
            decision = replace(decision, kind="auto", required_approvals=0)
        if force_approval and spec.category == "remediation" and decision.kind == "auto":
            why = texts(self.settings.language)("policy.scheduled_fix")
            decision = replace(
                decision, kind="approve", required_approvals=1, reason=f"{decision.reason} {why}"
            )
        opening: dict[str, ActionStatus] = {
            "auto": "running",
            "approve": "pending",
            "refuse": "refused",
        }
        status = opening[decision.kind]
        action = await self._create(chat_id, requester, plugin, params, decision, status)
        await self._audit(
            action,
            f"action.{decision.kind}",
            requester,
            decision.reason,
            trace_id,
            risk=decision.risk,
        )
        if decision.kind == "refuse":
            return Outcome(action, decision)
        if decision.kind == "approve":
            gate = await gates.open_gate(
                self.db,
                self.gates,
                run_id=str(action.run_id),
                incident_id=None,
                chat_id=chat_id,
                gate=GATE,
                token=str(action.run_id),
                named=decision.approvers,
                required=decision.required_approvals,
                requester=requester,
            )
            return Outcome(action, decision, gate)
        await self.run(action.id, by=())
        refreshed = await self.get(action.id)
        return Outcome(refreshed or action, decision)

    async def run(self, action_id: int, *, by: tuple[str, ...]) -> None:
        """Execute an approved (or automatic) action once; a second call does nothing."""
        action = await self.get(action_id)
        if action is None:
            return
        decision = action.decision
        row, fresh = await executions.begin_execution(
            self.db,
            str(action.run_id),
            "run",
            action.plugin,
            dict(action.params),
            dry_run=bool(decision.get("dry_run")),
            target=str(decision.get("target") or "") or None,
            # the global budget counts remediation that ran without a person
            auto=decision.get("kind") == "auto" and self._is_remediation(action.plugin),
            requested_by=action.requester,
        )
        if not fresh:
            return
        await self._set(action.id, status="running")
        ctx = PluginContext(dry_run=bool(decision.get("dry_run")), run_id=str(action.run_id))
        result = await execute(self.toolkit.registry, action.plugin, ctx, dict(action.params))
        await executions.finish_execution(
            self.db,
            row.id,
            ok=result.ok,
            summary=result.summary,
            output=result.output,
            data=dict(result.data),
        )
        await self._set(
            action.id,
            status="succeeded" if result.ok else "failed",
            summary=result.summary,
            result={
                "evidence": list(result.evidence),
                "output": result.output,
                "data": dict(result.data),
                "by": list(by),
            },
            finished_at=func.now(),
        )
        await self._audit(
            action,
            "action.executed",
            "system",
            result.summary,
            None,
            ok=result.ok,
            by=list(by),
        )

    async def decided(self, gate: Approval, decision: str, by: str) -> None:
        """A gate of an action was closed by a click: run it (approve) or mark it rejected."""
        action = await self.by_run(gate.run_id)
        if action is None:
            return
        approvers = approvals.approvers_of(gate) or (by,)
        if decision == "approve":
            await self.run(action.id, by=approvers)
        else:
            await self._set(action.id, status="rejected", result={"by": [by]})
            await self._audit(action, "action.rejected", by, "", None)
        await self.refresh_card(action.id)

    async def sweep_expired(self) -> int:
        """Close expired action gates; their cards say so."""
        expired = await gates.sweep(self.db, incident_gates=False)
        for gate in expired:
            action = await self.by_run(gate.run_id)
            if action is None:
                continue
            await self._set(action.id, status="expired")
            await self._audit(action, "action.expired", "system", "", None)
            await self.refresh_card(action.id)
        return len(expired)

    async def sweep_forever(self, every: float = 5.0) -> None:
        while True:
            try:
                await self.sweep_expired()
            except Exception as exc:  # keep sweeping; the next round retries
                log.warning("operations.sweep_failed", error=str(exc))
            await asyncio.sleep(every)

    async def refresh_card(self, action_id: int) -> None:
        """Patch the action's card with its current state (no buttons once decided)."""
        action = await self.get(action_id)
        if action is None or not action.card_message_id:
            return
        view = await self.view(action_id)
        if view is None:
            return
        card = action_card(view, texts(self.settings.language), ZoneInfo(self.settings.timezone))
        try:
            await self.api.patch_card(action.card_message_id, card)
        except Exception as exc:  # the row is the truth; a lost patch only delays the card
            log.warning("operations.patch_failed", action=action_id, error=str(exc))

    async def post_card(
        self, outcome: Outcome, send: Callable[[dict[str, Any]], Awaitable[str]]
    ) -> str | None:
        """Post a requested run's card through `send` (a reply, a message to a chat), with
        Approve / Reject while it waits, and remember it so later states patch it; a gate
        decided while the card was on its way gets its patch at once. The message id."""
        view = await self.view(outcome.action.id)
        if view is None:
            return None
        gate = outcome.gate
        buttons = gate_buttons(gate, self.signing_key) if gate is not None else {}
        zone = ZoneInfo(self.settings.timezone)
        message_id = await send(action_card(view, texts(self.settings.language), zone, **buttons))
        if gate is not None:
            await self._set(outcome.action.id, card_message_id=message_id)
            current = await approvals.find(self.db, str(gate.run_id), gate.gate, gate.interrupt_id)
            if current is not None and current.status != "pending":
                await self.refresh_card(outcome.action.id)
        return message_id

    def buttons(self, gate: Approval) -> dict[str, dict[str, Any]]:
        """The signed Approve / Reject values of an action's pending gate."""
        return gate_buttons(gate, self.signing_key)

    async def get(self, action_id: int) -> Action | None:
        async with self.db.session() as session:
            return await session.get(Action, action_id)

    async def view(self, action_id: int) -> ActionView | None:
        """The card's view of an action, with its gate when it has one."""
        action = await self.get(action_id)
        if action is None:
            return None
        async with self.db.session() as session:
            gate = await session.scalar(
                select(Approval).where(Approval.run_id == action.run_id, Approval.gate == GATE)
            )
        plugin = self.toolkit.registry.get(action.plugin)
        result = dict(action.result or {})
        decided_by = tuple(str(p) for p in result.get("by") or ())
        return ActionView(
            id=action.id,
            plugin=action.plugin,
            category=plugin.spec.category if plugin is not None else "remediation",
            params=self.toolkit.registry.redactor.data(dict(action.params)),
            requester=action.requester,
            risk=action.risk,
            decision=str(action.decision.get("kind", "refuse")),
            reason=str(action.decision.get("reason", "")),
            status=action.status,
            required=gate.required_approvals if gate is not None else 0,
            approvers=approvals.approvers_of(gate) if gate is not None else (),
            decided_by=decided_by,
            expires_at=gate.expires_at if gate is not None else None,
            summary=action.summary or "",
            evidence=tuple(str(line) for line in result.get("evidence") or ()),
            output=str(result.get("output") or ""),
            dry_run=bool(action.decision.get("dry_run")),
            finished_at=action.finished_at,
        )

    async def drain(self, patience: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=patience)

    def later(self, coroutine: Any) -> None:
        """Run a follow-up in the background, keeping a reference until it ends."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _is_remediation(self, plugin: str) -> bool:
        found = self.toolkit.registry.get(plugin)
        return found is not None and found.spec.category == "remediation"

    async def _create(
        self,
        chat_id: str,
        requester: str,
        plugin: str,
        params: Mapping[str, Any],
        decision: PolicyDecision,
        status: ActionStatus,
    ) -> Action:
        action = Action(
            run_id=uuid.uuid4(),
            chat_id=chat_id,
            requester=requester,
            plugin=plugin,
            params=dict(params),  # what runs; cards and the audit show it redacted
            risk=decision.risk,
            decision=decision.as_json(),
            status=status,
        )
        async with self.db.session() as session:
            session.add(action)
            await session.flush()
            await session.refresh(action)
        return action

    async def by_run(self, run_id: uuid.UUID) -> Action | None:
        async with self.db.session() as session:
            found: Action | None = await session.scalar(
                select(Action).where(Action.run_id == run_id)
            )
            return found

    async def _set(self, action_id: int, **values: Any) -> None:
        async with self.db.session() as session:
            await session.execute(update(Action).where(Action.id == action_id).values(**values))

    async def _audit(
        self,
        action: Action,
        kind: str,
        actor: str,
        message: str,
        trace_id: str | None,
        **data: Any,
    ) -> None:
        await record_event(
            self.db,
            None,
            kind,
            actor=actor,
            message=message,
            data={
                "action_id": action.id,
                "plugin": action.plugin,
                "params": self.toolkit.registry.redactor.data(dict(action.params)),
                "chat_id": action.chat_id,
                **data,
            },
            trace_id=trace_id,
        )
