"""What the incident cards show: frozen view models, filled by workflows, rendered by `cards`.

Every datetime is timezone-aware; the card functions show it in the chat's zone. Text fields may
carry hostile alert, plugin or model text: the card functions neutralise and cap it, so callers
pass it as it is.

Usage::

    view = IncidentView(id=7, title="HighCPU", severity="critical", status="open", service="db",
                        source="alertmanager", labels={"instance": "db-1"}, summary="CPU > 95%",
                        alert_count=3, first_seen=t0, last_seen=t1)
    card = incident_card(view, say=texts("zh"), zone=ZoneInfo("Asia/Shanghai"))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Gate = Literal["diagnosis", "proposal"]
ActionCode = Literal["check", "runbook", "faster_ack", "verify"]  # a postmortem's action items
# what an action item is about: a name, or a check as the diagnosis gave it (a finding's code
# and values with its own line under "text", worded by `cards.postmortem.action_text`)
ActionSubject = str | Mapping[str, Any]
GateStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]


@dataclass(frozen=True)
class Evidence:
    """One observation; `source` is the plugin or tool call that produced it."""

    source: str
    text: str


@dataclass(frozen=True)
class Hypothesis:
    """A possible cause and how sure the diagnosis is of it (0..1)."""

    cause: str
    confidence: float


@dataclass(frozen=True)
class DiagnosisView:
    """What the diagnosis found; `partial` when a step failed or the budget ran out."""

    summary: str
    hypotheses: tuple[Hypothesis, ...]
    evidence: tuple[Evidence, ...]
    next_checks: tuple[str, ...]
    provider: str
    partial: bool = False
    note: str = ""  # why it is partial, or why the model's diagnosis was not used
    seen_before: tuple[SeenBefore, ...] = ()
    # the rules' summary and hypotheses as codes with values (plugins.outcome.Diagnosis.codes),
    # worded by the card; a model's diagnosis has none and is shown as written
    codes: Mapping[str, Any] = field(default_factory=dict)
    council: CouncilView | None = None  # a council's diagnosis: who supports what, each model


@dataclass(frozen=True)
class CouncilHypothesis:
    """A cause the council merged: the members behind it and those who answered otherwise."""

    cause: str
    confidence: float
    support: tuple[str, ...]
    against: tuple[str, ...]


@dataclass(frozen=True)
class CouncilSeatView:
    """One model's part: `status` is pending | running | answered | failed | timed_out."""

    name: str
    model: str
    status: str
    latency_ms: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    summary: str = ""
    hypotheses: tuple[Hypothesis, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class CouncilView:
    """A council's merged view: `agreement` is the share of answering models behind the
    leading cause (0..1)."""

    agreement: float
    answered: int
    asked: int
    hypotheses: tuple[CouncilHypothesis, ...]
    members: tuple[CouncilSeatView, ...]


@dataclass(frozen=True)
class SeenBefore:
    """A similar past incident and what fixed it (from incident memory)."""

    incident_id: int
    title: str
    similarity: float
    fix: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class ProposalView:
    """A proposed remediation and the policy's verdict on it (`decision`: auto|approve|refuse)."""

    plugin: str
    title: str
    params: Mapping[str, Any]
    steps: tuple[str, ...]
    risk: str
    decision: str | None
    reason: str
    dry_run: bool = False
    call: tuple[str, ...] = ()  # the exact argv the fix runs, when it runs a command line


@dataclass(frozen=True)
class GateView:
    """An approval gate; the button values are signed by the caller and sent back verbatim."""

    gate: Gate
    status: GateStatus
    expires_at: datetime
    required: int = 1
    approvers: tuple[str, ...] = ()  # open_ids who approved so far / decided
    decided_at: datetime | None = None
    approve_value: Mapping[str, Any] | None = None
    reject_value: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ExecutionView:
    """The result of running the proposal (or of its dry run)."""

    plugin: str
    ok: bool
    summary: str
    output: str
    dry_run: bool
    finished_at: datetime | None
    finding: Mapping[str, Any] = field(default_factory=dict)  # the summary as {"code", "values"}


@dataclass(frozen=True)
class VerificationView:
    """Whether the fix held, checked after the execution."""

    ok: bool
    summary: str
    finding: Mapping[str, Any] = field(default_factory=dict)  # the summary as {"code", "values"}


@dataclass(frozen=True)
class EscalationView:
    """Why people are needed, and whom to @-mention (open_ids)."""

    reason: str  # the stored English sentence: shown only when there is no cause code
    mentions: tuple[str, ...]
    cause: str = ""  # workflows.escalation code ("gate_rejected", …), worded by the card
    values: Mapping[str, str] = field(default_factory=dict)
    nobody_on_call: bool = False  # the rotation had nobody: `mentions` are the approvers
    finding: Mapping[str, Any] = field(default_factory=dict)  # the failed result's code


@dataclass(frozen=True)
class IncidentView:
    """Everything one incident card shows; the sections that are `None` are left out."""

    id: int
    title: str
    severity: str
    status: str
    service: str | None
    source: str
    labels: Mapping[str, str]
    summary: str
    alert_count: int
    first_seen: datetime
    last_seen: datetime
    diagnosis: DiagnosisView | None = None
    proposal: ProposalView | None = None
    gate: GateView | None = None
    execution: ExecutionView | None = None
    verification: VerificationView | None = None
    escalation: EscalationView | None = None
    resolved_note: str | None = None
    resolved_by: str | None = None
    paging: PagingView | None = None
    postmortem_url: str | None = None  # the draft postmortem's document


@dataclass(frozen=True)
class PageLine:
    """One paging step: `status` pending | firing | done | cancelled; once fired, the
    `channel` that reached `people` (None: none did) and the channels Lark refused, as
    (channel, reason code) pairs (`workflows.oncall.paging.Refusal`)."""

    step: int
    level: int
    status: str
    due_at: datetime
    fired_at: datetime | None = None
    channel: str | None = None
    people: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PagingView:
    """An incident's paging: its steps, who acknowledged it, the signed Ack button's value
    while there is something to acknowledge, and the war-room button's."""

    lines: tuple[PageLine, ...]
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    ack_value: Mapping[str, Any] | None = None
    # acknowledged before its escalation: that acknowledgement no longer stops the paging
    before_escalation: bool = False
    room_value: Mapping[str, Any] | None = None  # the 建群 button, while it has no war room


@dataclass(frozen=True)
class OncallView:
    """Who is on call in one schedule now, and the next hand-off (None: no change ahead)."""

    schedule: str
    people: tuple[str, ...]
    until: datetime | None
    next_people: tuple[str, ...] = ()
    next_at: datetime | None = None
    override: bool = False


@dataclass(frozen=True)
class SwapView:
    """A proposed shift swap: `other` covers `asker` over `mine`, `asker` covers `other` over
    `theirs`; `status` asked | accepted | declined."""

    schedule: str
    asker: str
    other: str
    mine: tuple[datetime, datetime]
    theirs: tuple[datetime, datetime]
    status: str = "asked"


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an incident's audit timeline; `actor` is an open_id or a name like "bot"."""

    at: datetime
    kind: str
    actor: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)  # the event's codes and values


@dataclass(frozen=True)
class StormView:
    """Many alerts at once: `groups` are (fingerprint, title, count), largest first."""

    window_seconds: int
    total: int
    groups: tuple[tuple[str, str, int], ...]
    incident_ids: Mapping[str, int] = field(default_factory=dict)  # fingerprint -> incident id


@dataclass(frozen=True)
class IncidentRow:
    """One incident in a list."""

    id: int
    title: str
    severity: str
    status: str
    alert_count: int
    last_seen: datetime
    acknowledged_by: str | None = None


@dataclass(frozen=True)
class SilenceView:
    """One active silence."""

    id: int
    matcher: str
    until: datetime
    created_by: str
    caught: int = 0  # alerts it held back


@dataclass(frozen=True)
class PendingSilenceView:
    """A silence request still awaiting another approver (listed on /silences)."""

    id: int
    matcher: str
    duration: str  # as /silence reads it
    requested_by: str
    expires_at: datetime  # when it expires unconfirmed


@dataclass(frozen=True)
class SilenceRequestView:
    """A silence that needs another approver's confirmation, and what became of it."""

    id: int
    matcher: str
    duration: str  # as typed
    reason: str
    requested_by: str
    why: tuple[str, ...]  # `workflows.silences.Breadth` codes
    status: str  # `storage.statuses.SilenceStatus`
    until: datetime
    ttl_hours: int
    decided_by: str | None = None


@dataclass(frozen=True)
class PostmortemEntry:
    """One timeline entry: when, its audit kind, who, and its message as stored."""

    at: datetime
    kind: str
    actor: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)  # its codes and values


@dataclass(frozen=True)
class PostmortemView:
    """A postmortem's facts (`workflows.postmortem.draft`); `actions` are (code, subject)
    pairs the document words (`cards.postmortem`)."""

    incident_id: int
    title: str
    severity: str
    service: str | None
    opened: datetime
    resolved: datetime | None
    acknowledged: datetime | None
    acknowledged_by: str | None
    resolved_by: str | None
    note: str | None
    alerts: int
    timeline: tuple[PostmortemEntry, ...]
    diagnosis: str
    hypotheses: tuple[tuple[str, float], ...]
    evidence: tuple[tuple[str, str], ...]
    fix: tuple[str, str] | None  # (plugin, summary) of the fix that ran
    verified: bool | None
    similar: tuple[tuple[int, str, str], ...]  # (incident id, title, what fixed it)
    actions: tuple[tuple[ActionCode, ActionSubject], ...]
    worded: str = ""  # a model's summary of these facts (only when a model is configured)
    codes: Mapping[str, Any] = field(default_factory=dict)  # the diagnosis' findings as codes
    fix_finding: Mapping[str, Any] = field(default_factory=dict)  # the fix's result as a code

    @property
    def mtta(self) -> timedelta | None:
        return self.acknowledged - self.opened if self.acknowledged else None

    @property
    def mttr(self) -> timedelta | None:
        return self.resolved - self.opened if self.resolved else None


@dataclass(frozen=True)
class TasksView:
    """A postmortem's action items offered as Feishu tasks: `owner` is assigned them;
    `made` counts the tasks once someone (`by`) confirmed."""

    incident_id: int
    title: str
    actions: tuple[tuple[ActionCode, ActionSubject], ...]
    owner: str | None
    by: str | None = None
    made: int = 0
