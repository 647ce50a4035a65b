"""Plugin runs asked for in the chat (`/run`), by a scheduled job or through the chat agent:
each a remediation run of the action graph (`workflows.action_graph`), judged by the same
policy as an incident's fix, checkpointed and crash-safe like the incident workflow.

A diagnostic run, or a remediation the policy lets run automatically, runs at once; a
remediation that needs people gets an approval card (the same signed Approve / Reject buttons
as an incident gate, with no incident id) and runs once the gate is decided; a refused one runs
never. Every step is an `actions` row and an audit event; the run itself is an `executions` row
claimed once per action, so a replayed click or a crash never runs anything twice.

This module is the graph's `ActionDesk`: the policy's judgement, the plugin run, the audit and
the card.

Usage::

    desk = OperationsDesk(settings, db, api, toolkit, signing_key, checkpointer, coordination)
    outcome = await desk.request(chat_id, "ou_1", "pg_vacuum", {"table": "orders"}, trace_id)
    view = await desk.view(outcome.action.id)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from langgraph.checkpoint.base import BaseCheckpointSaver

from bot.config import Settings
from bot.lark.api import LarkApi, idempotency_key
from bot.logs import get_logger
from bot.roles import gate_policy
from cards.gates import gate_buttons
from cards.operations import ActionView, action_card
from cards.texts import texts
from plugins.contract import PluginContext, PluginSpec
from plugins.execution import call_of, execute
from plugins.policy import PolicyDecision, PolicyEngine
from plugins.registry import PluginRegistry
from plugins.runbooks import RunbookBook, finding_of
from storage import actions, approvals
from storage.coordination import Coordination
from storage.database import Database
from storage.incidents import record_event
from storage.models import Action, Approval
from storage.notices import paced
from workflows.action_graph import GATE, ActionDeps
from workflows.action_runs import ActionRuns
from workflows.payloads import ExecutionResult, gate_decision
from workflows.verdicts import judge

log = get_logger(__name__)
# an action's gate open this long without a card was left by a process that died before posting
# it (the requester posts it within a second or two): the sweep posts it to the action's chat
UNSEEN_AFTER = 30.0


@dataclass(frozen=True)
class Toolkit:
    """The plugins, the policy that fences them and the runbooks that use them."""

    registry: PluginRegistry
    policy: PolicyEngine
    book: RunbookBook


@dataclass(frozen=True)
class Outcome:
    """What a request did so far: the action row (with the policy's decision) and its gate."""

    action: Action
    gate: Approval | None = None

    @property
    def decision(self) -> dict[str, Any]:
        """The policy's decision (`PolicyDecision.as_json`)."""
        return dict(self.action.decision)


class OperationsDesk:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        api: LarkApi,
        toolkit: Toolkit,
        signing_key: bytes,
        checkpointer: BaseCheckpointSaver[Any],
        coordination: Coordination,
    ) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.db = db
        self.api = api
        self.toolkit = toolkit
        self.runs = ActionRuns(
            ActionDeps(db, self, gate_policy(settings)), checkpointer, coordination
        )

    async def request(
        self,
        chat_id: str,
        requester: str,
        plugin: str,
        params: Mapping[str, Any],
        trace_id: str | None = None,
        *,
        force_approval: bool = False,
        key: str | None = None,
    ) -> Outcome:
        """Start the action's run and wait until it pauses at its gate or ends: it runs now,
        waits for people, or is refused. `force_approval` (scheduled fixes): a fix the policy
        would run by itself waits for a person all the same. `key` (the inbound event that
        asked): the same request made again (a delivery replayed after a crash) is the same
        action, never a second one; its run is left to the sweep if it was cut short."""
        assert self.toolkit.registry.get(plugin) is not None, "the caller checks the plugin"
        run_id = _run_of(key, plugin, params) if key is not None else None
        known = await actions.by_run(self.db, run_id) if run_id is not None else None
        if known is not None:
            return Outcome(known, await actions.gate_of(self.db, known, GATE))
        action = await actions.create(
            self.db,
            chat_id=chat_id,
            requester=requester,
            plugin=plugin,
            params=params,
            run_id=run_id,
        )
        await self.runs.run(
            action.id, str(action.run_id), force_approval=force_approval, trace_id=trace_id
        )
        current = await actions.get(self.db, action.id) or action
        gate = await actions.gate_of(self.db, current, GATE)
        return Outcome(current, gate)

    async def judge(self, action: Action, *, force_approval: bool) -> tuple[dict[str, Any], bool]:
        """The policy's decision on a requested run (`ActionDesk.judge`)."""
        found = self.toolkit.registry.get(action.plugin)
        if found is None:  # the plugin went away with a configuration change
            refused = PolicyDecision("refuse", "high", 0, "unknown plugin", code="unknown_plugin")
            return refused.as_json(), False
        spec = found.spec
        decision = await judge(self.db, self.toolkit.policy, spec, dict(action.params), alert=None)
        if spec.category == "diagnostic" and decision.kind == "approve":
            # a read-only check never waits for people; fences, quotas and validity still apply
            decision = replace(decision, kind="auto", required_approvals=0)
        if force_approval and spec.category == "remediation" and decision.kind == "auto":
            why = texts(self.settings.language)("policy.scheduled_fix")
            decision = replace(
                decision, kind="approve", required_approvals=1, reason=f"{decision.reason} {why}"
            )
        return decision.as_json(), spec.category == "remediation"

    async def execute(self, action: Action) -> ExecutionResult:
        """Run the action's plugin (`ActionDesk.execute`)."""
        dry_run = bool(action.decision.get("dry_run"))
        ctx = PluginContext(dry_run=dry_run, run_id=str(action.run_id))
        result = await execute(self.toolkit.registry, action.plugin, ctx, dict(action.params))
        return {
            "ok": result.ok,
            "summary": result.summary,
            "output": result.output,
            "evidence": list(result.evidence),
            "data": dict(result.data),
            "finding": finding_of(result),
        }

    async def show(self, action_id: int) -> None:
        """`ActionDesk.show`: the card patched with the action's state."""
        await self.refresh_card(action_id)

    async def decided(self, gate: Approval, decision: str, by: str) -> None:
        """A gate of an action was closed by a click: resume its run with the decision."""
        approvers = approvals.approvers_of(gate) or (by,)
        who = list(approvers) if decision == "approve" else [by]
        await self.runs.resume(str(gate.run_id), gate.interrupt_id, gate_decision(decision, who))

    async def sweep_expired(self) -> int:
        """Close expired action gates; their runs end as expired and their cards say so."""
        count = await self.runs.sweep_expired()
        await self.runs.drain()
        return count

    async def sweep(self) -> None:
        """One round: expired gates, runs nobody drives, then gates nobody can see."""
        await self.runs.sweep()
        await self.post_unseen()

    async def post_unseen(self) -> int:
        """Post the card of each action waiting at a gate whose card was never posted (its
        requester died in between: a scheduled fix's replica, a chat turn): a gate nobody can
        see would only expire. How many were posted."""
        posted = 0
        for action_id in await actions.unseen(self.db, older_than=UNSEEN_AFTER, gate=GATE):
            if not await actions.claim_card(self.db, action_id):
                continue  # another replica posts it
            action = await self.get(action_id)
            gate = await actions.gate_of(self.db, action, GATE) if action is not None else None
            if action is None or gate is None or not action.chat_id:
                continue  # nowhere to post it: it waits for its expiry, as before
            chat_id = action.chat_id
            key = idempotency_key(f"action:{action_id}", "card", str(gate.interrupt_id))

            async def send(card: dict[str, Any], chat_id: str = chat_id, key: str = key) -> str:
                return await self.api.send_card(chat_id, card, uuid=key)

            try:
                await self.post_card(Outcome(action, gate), send)
            except Exception as exc:  # the next sweep tries again
                log.warning("operations.unseen_post_failed", action=action_id, error=str(exc))
                await actions.release_card(self.db, action_id)
                continue
            log.info("operations.unseen_posted", action=action_id)
            posted += 1
        return posted

    async def sweep_forever(self, every: float = 5.0, changed: asyncio.Event | None = None) -> None:
        """`sweep` every `every` seconds while actions are in flight; with none, after the next
        change of an action or gate (`changed`), or a minute."""

        async def round_() -> None:
            try:
                await self.sweep()
            except Exception as exc:  # keep sweeping; the next round retries
                log.warning("operations.sweep_failed", error=str(exc))

        await paced(round_, lambda: actions.in_flight(self.db), every=every, changed=changed)

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
            await actions.update(self.db, outcome.action.id, card_message_id=message_id)
            current = await approvals.find(self.db, str(gate.run_id), gate.gate, gate.interrupt_id)
            if current is not None and current.status != "pending":
                await self.refresh_card(outcome.action.id)
        return message_id

    def buttons(self, gate: Approval) -> dict[str, dict[str, Any]]:
        """The signed Approve / Reject values of an action's pending gate."""
        return gate_buttons(gate, self.signing_key)

    async def get(self, action_id: int) -> Action | None:
        return await actions.get(self.db, action_id)

    async def by_run(self, run_id: uuid.UUID) -> Action | None:
        return await actions.by_run(self.db, run_id)

    async def explain(self, spec: PluginSpec, params: Mapping[str, Any]) -> PolicyDecision:
        """What the policy would decide on a run of `spec` with `params` now, its quotas
        counted (`/policy check`); nothing is run or recorded."""
        return await judge(self.db, self.toolkit.policy, spec, params, alert=None)

    async def view(self, action_id: int) -> ActionView | None:
        """The card's view of an action, with its gate when it has one."""
        action = await self.get(action_id)
        if action is None:
            return None
        gate = await actions.gate_of(self.db, action, GATE)
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
            detail=str(action.decision.get("detail") or ""),
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
            interrupted=bool(result.get("interrupted")),
            finding=dict(result.get("finding") or {}),
            call=tuple(call_of(self.toolkit.registry, action.plugin, dict(action.params))),
        )

    async def drain(self, patience: float = 10.0) -> None:
        await self.runs.drain(patience)

    async def audit(
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


def _run_of(key: str, plugin: str, params: Mapping[str, Any]) -> uuid.UUID:
    """The run id of the action `key` asked for (one per event, plugin and parameters)."""
    what = json.dumps([key, plugin, dict(params)], sort_keys=True, default=str)
    return uuid.uuid5(uuid.NAMESPACE_URL, f"larkops:action:{what}")
