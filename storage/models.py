"""SQLAlchemy 2 models: Postgres is the source of truth for everything the bot knows.

Status columns are plain text checked by constraints (not Postgres enums) so that adding a state
is a one-line migration. Every timestamp is `timestamptz`, stored in UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.statuses import (
    ActionStatus,
    AlertStatus,
    CouncilBatchStatus,
    CouncilPurpose,
    CouncilTaskStatus,
    ExecutionStatus,
    GateStatus,
    InboundStatus,
    IncidentStatus,
    PageStatus,
    Risk,
    ScheduleKind,
    ScheduleRunStatus,
    ScheduleStatus,
    SilenceStatus,
    TurnRole,
    values,
)

EMBEDDING_DIMENSIONS = 384

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
    }


def _status(name: str, *values: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{name} IN ({allowed})", name=name)


class _Row:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _incident_fk(nullable: bool = False) -> Mapped[Any]:
    return mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=nullable, index=True
    )


class InboundEvent(Base, _Row):
    """Every event from Lark or a webhook, committed before it is acknowledged."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        _status("status", *values(InboundStatus)),
        Index(
            "uq_inbound_events_message_id",
            "message_id",
            unique=True,
            postgresql_where=text("message_id IS NOT NULL"),
        ),
        Index("ix_inbound_events_claim", "status", "id"),
    )

    event_id: Mapped[str] = mapped_column(Text, unique=True)
    message_id: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, server_default="lark")
    payload: Mapped[dict[str, Any]]
    status: Mapped[InboundStatus] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(Text)


class Incident(Base, _Row):
    """One problem, however many alerts fold into it; its run is a LangGraph thread."""

    __tablename__ = "incidents"
    __table_args__ = (
        _status("status", *values(IncidentStatus)),
        Index("ix_incidents_fingerprint_status", "fingerprint", "status"),
        Index("ix_incidents_status_created", "status", "created_at"),
        Index("ix_incidents_status_id", "status", "id"),  # the REST API's list by status
    )

    run_id: Mapped[uuid.UUID] = mapped_column(unique=True, server_default=func.gen_random_uuid())
    fingerprint: Mapped[str] = mapped_column(Text)
    status: Mapped[IncidentStatus] = mapped_column(Text, server_default="open")
    severity: Mapped[str] = mapped_column(Text, server_default="warning")
    title: Mapped[str] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(Text)
    chat_id: Mapped[str | None] = mapped_column(Text)
    card_message_id: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    alert_count: Mapped[int] = mapped_column(Integer, server_default="1")
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    # when it was escalated: an acknowledgement before then no longer stops its paging
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # why it was escalated, as a code with values the chat words (`workflows.escalation`)
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, server_default="generic")
    summary: Mapped[str] = mapped_column(Text, server_default="")
    # part of an alert storm: grouped on one summary card, its workflow started on request
    storm: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Alert(Base, _Row):
    """One alert notification as received (firing or resolved)."""

    __tablename__ = "alerts"
    __table_args__ = (
        _status("status", *values(AlertStatus)),
        Index("ix_alerts_fingerprint_received", "fingerprint", "received_at"),
    )

    incident_id: Mapped[int | None] = _incident_fk(nullable=True)
    source: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(Text)
    status: Mapped[AlertStatus] = mapped_column(Text, server_default="firing")
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text, server_default="warning")
    labels: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    annotations: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    raw: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class IncidentEvent(Base, _Row):
    """The audit timeline: every decision, by whom, when."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident_created", "incident_id", "created_at"),)

    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text, server_default="system")
    message: Mapped[str] = mapped_column(Text, server_default="")
    data: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    trace_id: Mapped[str | None] = mapped_column(Text)


class Diagnosis(Base, _Row):
    __tablename__ = "diagnoses"

    incident_id: Mapped[int] = _incident_fk()
    run_id: Mapped[uuid.UUID]
    provider: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    hypotheses: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    evidence: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    next_checks: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    partial: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # why it is partial, why the model was not used, similar past incidents, the tool calls
    details: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))


class Proposal(Base, _Row):
    __tablename__ = "proposals"
    __table_args__ = (
        _status("risk", *values(Risk)),
        CheckConstraint(
            "decision IS NULL OR decision IN ('auto', 'approve', 'refuse')", name="decision"
        ),
    )

    incident_id: Mapped[int] = _incident_fk()
    run_id: Mapped[uuid.UUID]
    plugin: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    risk: Mapped[Risk] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text, server_default="")
    decision: Mapped[str | None] = mapped_column(Text)
    decision_reason: Mapped[str | None] = mapped_column(Text)


class Approval(Base, _Row):
    """One approval gate of one run: the truth a button click is checked against."""

    __tablename__ = "approvals"
    __table_args__ = (
        _status("status", *values(GateStatus)),
        UniqueConstraint("run_id", "gate", "interrupt_id", name="uq_approvals_run_gate"),
        Index(
            "ix_approvals_pending_expiry",
            "expires_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(index=True)
    incident_id: Mapped[int | None] = _incident_fk(nullable=True)
    gate: Mapped[str] = mapped_column(Text)
    interrupt_id: Mapped[str] = mapped_column(Text)
    status: Mapped[GateStatus] = mapped_column(Text, server_default="pending")
    requester: Mapped[str | None] = mapped_column(Text)
    allowed_approvers: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    # True: the policy named `allowed_approvers` (only they and admins decide); False: they are
    # the chat's usual approvers, and anyone holding the approver role there decides too
    approvers_named: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    required_approvals: Mapped[int] = mapped_column(Integer, server_default="1")
    approvals: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    card_message_id: Mapped[str | None] = mapped_column(Text)


class Execution(Base, _Row):
    """A plugin run; (run id, step) is unique so a replayed step never acts twice."""

    __tablename__ = "executions"
    __table_args__ = (
        _status("status", *values(ExecutionStatus)),
        UniqueConstraint("run_id", "step", name="uq_executions_run_step"),
        Index("ix_executions_target_created", "target", "created_at"),
        Index("ix_executions_auto_created", "created_at", postgresql_where=text("auto")),
    )

    run_id: Mapped[uuid.UUID]
    incident_id: Mapped[int | None] = _incident_fk(nullable=True)
    step: Mapped[str] = mapped_column(Text)
    plugin: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[ExecutionStatus] = mapped_column(Text, server_default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    summary: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # what the policy's per-target quota counts (`plugins.policy.target_of`), and whether the
    # policy let it run without a person (the global budget of automatic runs counts these)
    target: Mapped[str | None] = mapped_column(Text)
    auto: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    requested_by: Mapped[str | None] = mapped_column(Text)


class Action(Base, _Row):
    """A plugin run asked for in the chat (`/run`); the run itself is an `Execution` row."""

    __tablename__ = "actions"
    __table_args__ = (
        _status("status", *values(ActionStatus)),
        UniqueConstraint("run_id", name="uq_actions_run_id"),
    )

    run_id: Mapped[uuid.UUID]
    chat_id: Mapped[str | None] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(Text)
    plugin: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    risk: Mapped[Risk] = mapped_column(Text)
    decision: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[ActionStatus] = mapped_column(Text, server_default="pending")
    summary: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    card_message_id: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LlmTurn(Base, _Row):
    """One model call: size, tokens, latency, cost and the tools it asked for (redacted)."""

    __tablename__ = "llm_turns"
    __table_args__ = (Index("ix_llm_turns_created", "created_at"),)

    incident_id: Mapped[int | None] = _incident_fk(nullable=True)
    run_id: Mapped[uuid.UUID | None]
    conversation_id: Mapped[str | None] = mapped_column(Text, index=True)
    purpose: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    prompt_chars: Mapped[int] = mapped_column(Integer, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    latency_ms: Mapped[int] = mapped_column(Integer, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), server_default="0")
    tool_calls: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    request: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    response: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)


class Knowledge(Base, _Row):
    """Incident memory and runbooks, searchable by embedding similarity (pgvector)."""

    __tablename__ = "knowledge"
    __table_args__ = (
        UniqueConstraint("kind", "source_id", name="uq_knowledge_kind_source"),
        Index(
            "ix_knowledge_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    kind: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    embedding_model: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIMENSIONS))


class Silence(Base, _Row):
    """A maintenance window: alerts matching it are recorded but start nothing."""

    __tablename__ = "silences"
    __table_args__ = (
        Index("ix_silences_active", "ends_at"),
        _status("status", *values(SilenceStatus)),
    )

    chat_id: Mapped[str | None] = mapped_column(Text)
    matcher: Mapped[str] = mapped_column(Text)  # as typed, for display
    matchers: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[SilenceStatus] = mapped_column(Text, server_default="active")
    # the confirmation gate of a request (`approvals.run_id`); None for a silence in force at once
    run_id: Mapped[uuid.UUID | None] = mapped_column()
    caught: Mapped[int] = mapped_column(Integer, server_default="0")  # alerts it held back
    decided_by: Mapped[str | None] = mapped_column(Text)  # who confirmed or rejected a request


class TriagedDelivery(Base, _Row):
    """A delivery (webhook or alert-bot message) whose alerts triage has counted: triage
    inserts it in its own transaction, so a delivery replayed after a crash is counted once."""

    __tablename__ = "triaged_deliveries"

    delivery: Mapped[str] = mapped_column(Text, unique=True)


class DedupeOverride(Base, _Row):
    """One fingerprint's own dedupe window (the report's `dedupe` suggestion); triage uses it
    instead of the global `incidents.dedupe_window_minutes`."""

    __tablename__ = "dedupe_overrides"
    __table_args__ = (CheckConstraint("minutes BETWEEN 1 AND 10080", name="minutes"),)

    fingerprint: Mapped[str] = mapped_column(Text, unique=True)
    minutes: Mapped[int] = mapped_column(Integer)
    chat_id: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Schedule(Base, _Row):
    """A confirmed (or awaiting confirmation) scheduled job; the scheduler is rebuilt from it."""

    __tablename__ = "schedules"
    __table_args__ = (
        _status("status", *values(ScheduleStatus)),
        _status("kind", *values(ScheduleKind)),
        Index("ix_schedules_status", "status"),
    )

    chat_id: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    task: Mapped[str] = mapped_column(Text)
    action: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    timezone: Mapped[str] = mapped_column(Text)
    kind: Mapped[ScheduleKind] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    cron: Mapped[str | None] = mapped_column(Text)
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[ScheduleStatus] = mapped_column(Text, server_default="pending")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_by: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the message showing a draft's confirmation card (the expiry sweep updates it)
    card_message_id: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ScheduleRun(Base, _Row):
    """One fire of a schedule; unique on (schedule, fire time) so it fires once anywhere."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        _status("status", *values(ScheduleRunStatus)),
        UniqueConstraint("schedule_id", "fire_time", name="uq_schedule_runs_fire"),
    )

    schedule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("schedules.id", ondelete="CASCADE")
    )
    fire_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[ScheduleRunStatus] = mapped_column(Text, server_default="running")
    replica: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # times the run was taken over from a replica that died and run again (once at most)
    reruns: Mapped[int] = mapped_column(SmallInteger, server_default="0")


class Conversation(Base, _Row):
    """A thread of questions to the chat agent, keyed by the thread's first message.

    `answering_message_id` is the answer card being streamed (cleared when the answer is
    finished), so a restart can tell the chat that an answer was cut off."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("chat_id", "root_message_id", name="uq_conversations_root"),)

    chat_id: Mapped[str] = mapped_column(Text)
    root_message_id: Mapped[str] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(Text)
    questions: Mapped[int] = mapped_column(Integer, server_default="0")
    answering_message_id: Mapped[str | None] = mapped_column(Text)
    answering_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ConversationMessage(Base, _Row):
    """One message of a conversation, redacted: a question, a tool exchange or an answer."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_conversation_messages_seq"),
        _status("role", *values(TurnRole)),
    )

    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[TurnRole] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, server_default="")
    tool_calls: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    tool_call_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(Text)  # the Lark message a question came in


class CouncilBatch(Base, _Row):
    """One question put to a council of models: a diagnosis (keyed by its run) or an `/ask`.

    `key` makes it once per run (a run re-tried by another replica finds its batch again);
    `brief` is what each model is asked (so any replica can run a task again); `merged` is the
    combined answer once every task is final or the deadline passed."""

    __tablename__ = "council_batches"
    __table_args__ = (
        UniqueConstraint("key", name="uq_council_batches_key"),
        _status("purpose", *values(CouncilPurpose)),
        _status("status", *values(CouncilBatchStatus)),
    )

    key: Mapped[str] = mapped_column(Text)
    purpose: Mapped[CouncilPurpose] = mapped_column(Text)
    incident_id: Mapped[int | None] = _incident_fk(nullable=True)
    brief: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[CouncilBatchStatus] = mapped_column(Text, server_default="running")
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    merged: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CouncilTask(Base, _Row):
    """One model's part of a batch: claimed under a lease, answered exactly once.

    `attempt` counts claims and fences the result: only the latest claimant may finish it."""

    __tablename__ = "council_tasks"
    __table_args__ = (
        UniqueConstraint("batch_id", "member", name="uq_council_tasks_member"),
        _status("status", *values(CouncilTaskStatus)),
        Index("ix_council_tasks_lease", "status", "lease_until"),
    )

    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("council_batches.id", ondelete="CASCADE")
    )
    member: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    status: Mapped[CouncilTaskStatus] = mapped_column(Text, server_default="pending")
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    latency_ms: Mapped[int] = mapped_column(Integer, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), server_default="0")
    answer: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Page(Base, _Row):
    """One step of an incident's paging (`workflows.oncall.escalation_policy.Step`): a durable
    timer. Every replica claims due rows with `FOR UPDATE SKIP LOCKED`, so each fires once."""

    __tablename__ = "pages"
    __table_args__ = (
        _status("status", *values(PageStatus)),
        UniqueConstraint("incident_id", "step", name="uq_pages_incident_step"),
        Index("ix_pages_due", "due_at", postgresql_where=text("status = 'pending'")),
    )

    incident_id: Mapped[int] = _incident_fk()
    policy: Mapped[str] = mapped_column(Text)
    step: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[PageStatus] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # who was paged, through which channel, which channels Lark refused and why
    outcome: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    # planned by the incident's escalation (due from `Incident.escalated_at`), not its opening
    after_escalation: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class OncallOverride(Base, _Row):
    """Someone covering a schedule for a while (`/oncall override`, an accepted swap)."""

    __tablename__ = "oncall_overrides"
    __table_args__ = (Index("ix_oncall_overrides_schedule_ends", "schedule", "ends_at"),)

    schedule: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, server_default="")


class OncallHandoff(Base, _Row):
    """A shift change announced in the chat; unique per (schedule, instant), so once."""

    __tablename__ = "oncall_handoffs"
    __table_args__ = (
        UniqueConstraint("schedule", "handoff_at", name="uq_oncall_handoffs_schedule_at"),
    )

    schedule: Mapped[str] = mapped_column(Text)
    handoff_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    chat_id: Mapped[str] = mapped_column(Text)
    people: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    message_id: Mapped[str | None] = mapped_column(Text)


class WarRoom(Base, _Row):
    """The Lark group made for an incident (`/warroom`), and the incident's card in it."""

    __tablename__ = "war_rooms"

    incident_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[str | None] = mapped_column(Text)
    card_message_id: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    # the summary posted to the alert chat once the incident was resolved
    summary_message_id: Mapped[str | None] = mapped_column(Text)
    dissolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Postmortem(Base, _Row):
    """The draft postmortem of a resolved incident: the Feishu document it was published as
    (`drafts`: how many times it was generated)."""

    __tablename__ = "postmortems"

    incident_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), unique=True
    )
    document_id: Mapped[str | None] = mapped_column(Text)
    drafts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_by: Mapped[str] = mapped_column(Text)
    # who confirmed the action items as Feishu tasks, and the tasks' guids
    tasks_by: Mapped[str | None] = mapped_column(Text)
    tasks: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))


class ApiKey(Base, _Row):
    """A key of the REST API (`larkops apikey create`): it acts as its owner, with the
    owner's roles. Only a hash of the secret is kept; `prefix` names the key in lists and
    in the audit timeline."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)  # the open_id it acts as
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    secret_hash: Mapped[str] = mapped_column(Text)  # sha256 of the whole key, hex
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base, _Row):
    """A console sign-in (Feishu OAuth): the cookie carries the token, the row its hash."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    open_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, server_default="")
    csrf: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
