"""The chat agent's change tools: each posts the card a person would get, and changes nothing.

- `create_job`: the schedule's confirmation card (Confirm / Edit / Cancel), as `/schedule` does;
- `change_job` (pause, resume, delete, run now) and `start_diagnosis`: a card with Confirm /
  Cancel; the click does it, with the clicker's rights (a job's owner or an admin; an approver
  for a diagnosis, as `/diagnose` requires);
- `propose_remediation`: the same request `/run` makes, judged by the policy, except that a fix
  the policy would run by itself waits for a person all the same (the asking person is the
  requester, so someone else approves unless the policy says otherwise).

The model is told what card was posted, never that anything happened.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from bot.chat.toolbox import Data, Said, Tool, ToolFailed, ToolScope, own_incident
from cards.actions import ActionPayload
from cards.chat import SuggestionView, suggestion_card


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobText(_Params):
    text: str = Field(
        min_length=2,
        max_length=300,
        description="when and what, as the person said it, e.g. '每个工作日早上9点检查服务器健康'",
    )


class JobChange(_Params):
    job_id: int = Field(ge=1)
    change: Literal["pause", "resume", "delete", "run"]


class DiagnosisRequest(_Params):
    incident_id: int = Field(ge=1)


class RemediationRequest(_Params):
    plugin: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class Suggestion(ActionPayload):
    """A change the agent suggested; only the chat it was posted in can decide it."""

    kind: Literal["job", "diagnose"]
    target: int
    nonce: str  # shared by the card's two buttons: the card is decided once
    change: str = ""
    chat_id: str
    asked_by: str
    exp: float = 0.0  # epoch seconds after which the card is void (older cards have none: void)

    def expired(self, now: float | None = None) -> bool:
        """Nothing waits for a click forever (`LARKOPS_PENDING_TTL_HOURS`)."""
        return self.exp <= (time.time() if now is None else now)


class SuggestionConfirm(Suggestion, action="chat.confirm"):
    """Do it."""


class SuggestionCancel(Suggestion, action="chat.cancel"):
    """Don't."""


def _buttons(scope: ToolScope, view: SuggestionView) -> dict[str, dict[str, Any]]:
    ctx = scope.ctx
    assert view.expires_at is not None
    common = {
        "chat_id": ctx.chat_id,
        "asked_by": ctx.user,
        "nonce": uuid.uuid4().hex,
        "exp": view.expires_at.timestamp(),
        "kind": view.kind,
        "target": view.target,
        "change": view.change,
    }
    return {
        "confirm_value": ctx.sign(SuggestionConfirm(**common)),
        "cancel_value": ctx.sign(SuggestionCancel(**common)),
    }


def _view(scope: ToolScope, kind: str, target: int, label: str, change: str = "") -> SuggestionView:
    """An open suggestion card, void after `LARKOPS_PENDING_TTL_HOURS`."""
    ttl = timedelta(hours=scope.ctx.services.settings.pending_ttl_hours)
    expires = datetime.now(UTC) + ttl
    return SuggestionView(kind, target, label, scope.ctx.user, change=change, expires_at=expires)


async def create_job(scope: ToolScope, q: JobText) -> tuple[Data, Said]:
    from bot.commands.schedules import post_draft  # the command module owns the card flow

    desk = scope.ctx.services.schedules
    draft = await desk.draft(scope.ctx.chat_id, scope.ctx.user, q.text)
    if draft.schedule is None:
        if draft.unable is not None:
            raise ToolFailed(
                "a scheduled job cannot do that task (reports, reminders, checks only)"
            )
        if draft.result.status == "clarify":
            raise ToolFailed(f"the time is unclear: {draft.result.question}")
        raise ToolFailed("no schedule could be read from that text")
    await post_draft(scope.ctx, draft)
    data = {
        "card": "schedule confirmation (Confirm / Edit / Cancel)",
        "pending_job_id": draft.schedule.id,
        "next_runs": [view.isoformat() for view in desk.view(draft.schedule, runs=3).next_runs],
        "note": "the job exists only after someone clicks Confirm",
    }
    return data, Said("tool_job_card", id=draft.schedule.id)


async def change_job(scope: ToolScope, q: JobChange) -> tuple[Data, Said]:
    from bot.scheduling.desk import ScheduleRefused

    desk = scope.ctx.services.schedules
    try:
        row = await desk.get(q.job_id, scope.ctx.chat_id)
    except ScheduleRefused as exc:
        raise ToolFailed(str(exc)) from None
    view = _view(scope, "job", row.id, row.task, change=q.change)
    buttons = _buttons(scope, view)
    zone = ZoneInfo(scope.ctx.services.settings.timezone)
    await scope.ctx.reply_card(suggestion_card(view, scope.ctx.texts, zone=zone, **buttons))
    data = {"card": f"confirm {q.change} of job #{row.id}", "note": "nothing changes until Confirm"}
    return data, Said(f"tool_job_{q.change}_card", id=row.id)


async def start_diagnosis(scope: ToolScope, q: DiagnosisRequest) -> tuple[Data, Said]:
    row = await own_incident(scope, q.incident_id)
    view = _view(scope, "diagnose", row.id, row.title)
    buttons = _buttons(scope, view)
    zone = ZoneInfo(scope.ctx.services.settings.timezone)
    await scope.ctx.reply_card(suggestion_card(view, scope.ctx.texts, zone=zone, **buttons))
    data = {"card": f"confirm the diagnosis of incident #{row.id}", "note": "an approver confirms"}
    return data, Said("tool_diagnosis_card", id=row.id)


async def propose_remediation(scope: ToolScope, q: RemediationRequest) -> tuple[Data, Said]:
    from bot.commands.plugins import post_action

    ops = scope.ctx.services.operations
    found = ops.toolkit.registry.get(q.plugin)
    if found is None or not ops.toolkit.registry.is_enabled(q.plugin):
        raise ToolFailed(f"there is no enabled plugin named {q.plugin[:64]!r}")
    if found.spec.category != "remediation":
        raise ToolFailed(f"{q.plugin} is a diagnostic check: call it as a tool instead")
    outcome = await ops.request(
        scope.ctx.chat_id,
        scope.ctx.user,
        q.plugin,
        q.params,
        scope.ctx.trace_id,
        force_approval=True,
        key=scope.ctx.event.event_id,
    )
    await post_action(scope.ctx, outcome)
    decision = outcome.decision
    kind = str(decision.get("kind", "refuse"))
    data = {
        "card": f"run #{outcome.action.id} of {q.plugin}",
        "policy": kind,
        "reason": str(decision.get("reason", "")),
        "approvals_needed": int(decision.get("required_approvals") or 0),
        "note": "refused: it will not run"
        if kind == "refuse"
        else "it runs only after the approvals",
    }
    return data, Said(f"tool_remediation_{kind}", plugin=q.plugin)


CHANGE_TOOLS: tuple[Tool, ...] = (
    Tool(
        "create_job",
        "Create a scheduled job from a sentence: posts the confirmation card (nothing runs "
        "until someone confirms).",
        JobText,
        create_job,
        changes=True,
    ),
    Tool(
        "change_job",
        "Pause, resume, delete or run now a job of this chat: posts a card to confirm.",
        JobChange,
        change_job,
        changes=True,
    ),
    Tool(
        "start_diagnosis",
        "Start the diagnosis workflow of an incident of this chat: posts a card an approver "
        "confirms.",
        DiagnosisRequest,
        start_diagnosis,
        changes=True,
    ),
    Tool(
        "propose_remediation",
        "Propose a fix (a remediation plugin with parameters): posts the approval card, the "
        "policy decides who must approve or refuses it.",
        RemediationRequest,
        propose_remediation,
        changes=True,
    ),
)
