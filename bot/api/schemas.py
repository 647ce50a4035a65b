"""The REST API's bodies: what it answers and what it accepts (the OpenAPI document is made
from these). Rows become bodies here and nowhere else."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Row

from cards.lists import event_text, kind_name
from cards.texts import Texts
from storage.approvals import approvers_of
from storage.models import Approval, Incident, IncidentEvent, Schedule, Silence

CHAT_ID = r"^[A-Za-z0-9_-]{1,128}$"  # Lark chat ids (oc_…)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


Words = Annotated[str, AfterValidator(_no_nul)]
ChatId = Annotated[str, Field(pattern=CHAT_ID)]


class Problem(BaseModel):
    """Every answer that is not a success."""

    error: str
    message: str
    needs: str | None = Field(default=None, description="the least role that would do")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="what does not read (422)"
    )


class IncidentOut(BaseModel):
    id: int
    title: str
    status: str
    severity: str
    service: str | None
    chat_id: str | None
    source: str
    alert_count: int
    storm: bool
    labels: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    escalation_reason: str | None

    @classmethod
    def of(cls, row: Incident | Row[Any]) -> IncidentOut:
        """From an ORM row or a plain row of the incidents table (the list's)."""
        return cls(
            id=row.id,
            title=row.title,
            status=row.status,
            severity=row.severity,
            service=row.service,
            chat_id=row.chat_id,
            source=row.source,
            alert_count=row.alert_count,
            storm=row.storm,
            labels=dict(row.labels or {}),
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            resolved_at=row.resolved_at,
            resolved_by=row.resolved_by,
            escalation_reason=row.escalation_reason,
        )


class IncidentPage(BaseModel):
    incidents: list[IncidentOut]
    next_before: int | None = Field(
        description="pass as `before` for the next (older) page; null on the last page"
    )


class EventOut(BaseModel):
    id: int
    at: datetime
    incident_id: int | None
    kind: str
    actor: str
    message: str
    data: dict[str, Any]
    label: str = Field(default="", description="the kind in the caller's language")
    words: str = Field(default="", description="what happened, in the caller's language")

    @classmethod
    def of(cls, row: IncidentEvent, say: Texts | None = None) -> EventOut:
        """The row; with `say`, worded as the chat's /incident timeline words it."""
        data = dict(row.data or {})
        return cls(
            id=row.id,
            at=row.created_at,
            incident_id=row.incident_id,
            kind=row.kind,
            actor=row.actor,
            message=row.message,
            data=data,
            label=kind_name(row.kind, say) if say else "",
            words=event_text(row.kind, row.message, data, say) if say else "",
        )


class GateOut(BaseModel):
    id: int
    run_id: str
    incident_id: int | None
    chat_id: str | None
    gate: str
    status: str
    requester: str | None
    approvers: list[str] = Field(description="who may decide (besides admins)")
    approvers_named: bool
    required_approvals: int
    approved_by: list[str]
    decided_by: str | None
    decided_at: datetime | None
    expires_at: datetime

    @classmethod
    def of(cls, row: Approval, chat_id: str | None) -> GateOut:
        return cls(
            id=row.id,
            run_id=str(row.run_id),
            incident_id=row.incident_id,
            chat_id=chat_id,
            gate=row.gate,
            status=row.status,
            requester=row.requester,
            approvers=[str(who) for who in row.allowed_approvers],
            approvers_named=row.approvers_named,
            required_approvals=row.required_approvals,
            approved_by=list(approvers_of(row)),
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            expires_at=row.expires_at,
        )


class DiagnosisOut(BaseModel):
    summary: str
    provider: str
    partial: bool
    hypotheses: list[Any]
    evidence: list[Any]
    next_checks: list[Any]


class IncidentDetail(BaseModel):
    incident: IncidentOut
    timeline: list[EventOut]
    gates: list[GateOut]
    diagnosis: DiagnosisOut | None


class Acknowledged(BaseModel):
    incident: IncidentOut
    acknowledged_by: str = Field(description="who acknowledged first (maybe someone else)")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Words = Field(default="", max_length=500)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    comment: Words | None = Field(default=None, max_length=1000)


class DecisionOut(BaseModel):
    gate: GateOut
    decided: bool = Field(description="the gate closed now (false: more approvals needed)")
    approvals: int
    required: int


class ParseIn(BaseModel):
    text: Words = Field(max_length=2000)
    now: Words | None = Field(default=None, max_length=64, description="ISO 8601")
    tz: Words | None = Field(default=None, max_length=64, description="IANA zone")


class ParseOut(BaseModel):
    """Exactly the object of `larkops schedule parse --json`."""

    model_config = ConfigDict(extra="allow")
    status: Literal["scheduled", "clarify", "not_schedule"]
    task: str | None
    timezone: str
    cron: str | None
    run_at: str | None
    next_runs: list[str]
    question: str | None
    source: str


class JobOut(BaseModel):
    id: int
    chat_id: str
    task: str
    source_text: str
    status: str
    kind: str
    rule: str
    timezone: str
    cron: str | None
    next_runs: list[datetime]
    last_run_at: datetime | None
    created_by: str
    action: dict[str, Any]

    @classmethod
    def of(cls, row: Schedule, rule: str, next_runs: list[datetime]) -> JobOut:
        return cls(
            id=row.id,
            chat_id=row.chat_id,
            task=row.task,
            source_text=row.source_text,
            status=row.status,
            kind=row.kind,
            rule=rule,
            timezone=row.timezone,
            cron=row.cron,
            next_runs=next_runs,
            last_run_at=row.last_run_at,
            created_by=row.created_by,
            action=dict(row.action or {}),
        )


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Words = Field(min_length=1, max_length=2000, description="when and what, as said")
    chat_id: ChatId = Field(description="where its results go")


class JobCreated(BaseModel):
    job: JobOut | None
    parse: ParseOut


class SilenceOut(BaseModel):
    id: int
    chat_id: str | None
    matcher: str
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, row: Silence) -> SilenceOut:
        return cls(
            id=row.id,
            chat_id=row.chat_id,
            matcher=row.matcher,
            reason=row.reason,
            created_by=row.created_by,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chat_id: ChatId
    matcher: Words = Field(min_length=1, max_length=500, examples=["alertname=DiskFull"])
    duration: Words = Field(min_length=1, max_length=16, examples=["2h"])
    reason: Words = Field(default="", max_length=500)


class PluginOut(BaseModel):
    name: str
    category: str
    risk: str
    enabled: bool
    title: str
    description: str
    timeout: float
    idempotent: bool
    supports_dry_run: bool
    params: dict[str, Any] = Field(description="JSON schema of the parameters")


class RunbookOut(BaseModel):
    name: str
    match: dict[str, Any]
    diagnose: list[str]
    propose: str | None
    verify: str | None


class PolicyOut(BaseModel):
    policy: dict[str, Any]
    reach: list[str]


class PolicyCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plugin: Words = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "\\u0000" in json.dumps(value):
            raise ValueError("NUL characters are not allowed")
        return value


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: Words = Field(min_length=1, max_length=2000)
    chat_id: ChatId | None = Field(default=None, description="whose incidents and jobs it may see")
