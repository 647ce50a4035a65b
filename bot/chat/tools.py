"""The chat agent's read-only tools over the bot's own data (scoped to the asking chat).

Incidents, their timelines, jobs and their runs are those of the chat the question came from;
plugins, runbooks and the bot's health are global. Nothing here changes anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.chat.toolbox import Data, Said, Tool, ToolFailed, ToolScope, own_incident
from bot.scheduling.jobs import analyse
from storage import incidents, job_history
from storage.models import Diagnosis, Incident

MAX_ROWS = 20


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentQuery(_Params):
    status: Literal["active", "resolved", "escalated", "all"] = "active"
    service: str | None = Field(default=None, max_length=120, description="exact service name")
    hours: int = Field(
        default=24,
        ge=1,
        le=24 * 90,
        description="look back this many hours (not for active: unresolved ones are all shown)",
    )
    limit: int = Field(default=10, ge=1, le=MAX_ROWS)


class IncidentRef(_Params):
    incident_id: int = Field(ge=1)


class NoParams(_Params):
    pass


class RunQuery(_Params):
    job_id: int | None = Field(default=None, ge=1, description="one job, or all of the chat")
    status: Literal["failed", "succeeded", "all"] = "all"
    hours: int = Field(default=168, ge=1, le=24 * 90)
    limit: int = Field(default=10, ge=1, le=MAX_ROWS)


class JobRef(_Params):
    job_id: int = Field(ge=1)


class SimilarQuery(_Params):
    incident_id: int | None = Field(default=None, ge=1)
    text: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=5, ge=1, le=10)


def _since(hours: int) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def _incident_row(row: Incident) -> Data:
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "severity": row.severity,
        "service": row.service,
        "alerts": row.alert_count,
        "first_seen": row.first_seen_at.isoformat(),
        "last_seen": row.last_seen_at.isoformat(),
        "acknowledged_by": row.acknowledged_by,
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
    }


async def list_incidents(scope: ToolScope, q: IncidentQuery) -> tuple[Data, Said]:
    rows = await incidents.of_chat(
        scope.ctx.services.db,
        scope.ctx.chat_id,
        status=q.status,
        since=_since(q.hours),
        service=q.service,
        limit=q.limit,
    )
    found = [_incident_row(row) for row in rows]
    return {"incidents": found}, Said(f"tool_incidents_{q.status}", count=len(found), hours=q.hours)


async def incident_detail(scope: ToolScope, q: IncidentRef) -> tuple[Data, Said]:
    db = scope.ctx.services.db
    row = await own_incident(scope, q.incident_id)
    events = await incidents.timeline(db, row.id, limit=30)
    diagnosis = await incidents.latest(db, Diagnosis, row.id)
    data = {
        **_incident_row(row),
        "labels": row.labels,
        "summary": row.summary,
        "escalation_reason": row.escalation_reason,
        "timeline": [
            {"at": e.created_at.isoformat(), "kind": e.kind, "by": e.actor, "note": e.message}
            for e in events
        ],
        "diagnosis": None
        if diagnosis is None
        else {
            "summary": diagnosis.summary,
            "hypotheses": diagnosis.hypotheses,
            "by": diagnosis.provider,
            "partial": diagnosis.partial,
        },
    }
    return data, Said("tool_incident", id=row.id, entries=len(events))


async def list_jobs(scope: ToolScope, q: NoParams) -> tuple[Data, Said]:
    desk = scope.ctx.services.schedules
    views = await desk.jobs(scope.ctx.chat_id)
    jobs = [
        {
            "id": v.id,
            "task": v.task,
            "rule": v.rule,
            "status": v.status,
            "does": v.action,
            "next_runs": [t.isoformat() for t in v.next_runs],
            "last_result": v.last_result,
            "created_by": v.created_by,
        }
        for v in views
    ]
    return {"jobs": jobs}, Said("tool_jobs", count=len(jobs))


async def list_job_runs(scope: ToolScope, q: RunQuery) -> tuple[Data, Said]:
    rows = await job_history.runs_of_chat(
        scope.ctx.services.db,
        scope.ctx.chat_id,
        since=_since(q.hours),
        job_id=q.job_id,
        status=q.status,
        limit=q.limit,
    )
    runs = [
        {
            "job_id": run.schedule_id,
            "task": task,
            "fired": run.fire_time.isoformat(),
            "status": run.status,
            "error": (run.error or "")[:300] or None,
            "output": (run.output or "")[:300] or None,
        }
        for run, task in rows
    ]
    return {"runs": runs}, Said(f"tool_runs_{q.status}", count=len(runs), hours=q.hours)


async def analyze_failed_run(scope: ToolScope, q: JobRef) -> tuple[Data, Said]:
    found = await job_history.latest_failure(scope.ctx.services.db, scope.ctx.chat_id, q.job_id)
    if found is None:
        raise ToolFailed(f"job #{q.job_id} of this chat has no failed run")
    run, task = found
    failure, say = analyse(run.error or "", run.output or ""), scope.ctx.texts
    pattern = say(f"schedule.analysis.{failure.kind}.pattern", text=failure.text)
    data = {
        "job_id": q.job_id,
        "task": task,
        "fired": run.fire_time.isoformat(),
        "error": (run.error or "")[:1000],
        "output": (run.output or "")[:1000],
        "pattern": pattern,
        "likely_cause": say(f"schedule.analysis.{failure.kind}.cause"),
        "suggestion": say(f"schedule.analysis.{failure.kind}.suggestion"),
    }
    return data, Said("tool_failure_analysis", id=q.job_id, pattern=pattern)


async def list_plugins(scope: ToolScope, q: NoParams) -> tuple[Data, Said]:
    ops = scope.ctx.services.operations
    registry = ops.toolkit.registry
    plugins = [
        {
            "name": spec.name,
            "category": spec.category,
            "risk": spec.risk,
            "what": spec.title_en,
            "enabled": registry.is_enabled(spec.name),
        }
        for spec in registry.specs()
    ]
    return {"plugins": plugins}, Said("tool_plugins", count=len(plugins))


async def list_runbooks(scope: ToolScope, q: NoParams) -> tuple[Data, Said]:
    ops = scope.ctx.services.operations
    books = [
        {
            "name": book.name,
            "match": dict(book.match),
            "diagnose": [step.plugin for step in book.diagnose],
            "fix": book.propose.plugin if book.propose else None,
        }
        for book in ops.toolkit.book.runbooks
    ]
    return {"runbooks": books}, Said("tool_runbooks", count=len(books))


async def similar_incidents(scope: ToolScope, q: SimilarQuery) -> tuple[Data, Said]:
    memory = scope.ctx.services.memory
    if q.incident_id is not None:
        await own_incident(scope, q.incident_id)
        found = await memory.similar(q.incident_id, limit=q.limit)
    elif q.text:
        found = await memory.similar(q.text, limit=q.limit)
    else:
        raise ToolFailed("give incident_id or text")
    seen = [
        {
            "incident_id": s.incident_id,
            "title": s.title,
            "similarity": round(s.similarity, 2),
            "fixed_by": s.fix,
            "outcome": s.outcome,
            "kind": s.kind,
        }
        for s in found
    ]
    return {"similar": seen}, Said("tool_similar", count=len(seen))


async def system_health(scope: ToolScope, q: NoParams) -> tuple[Data, Said]:
    health = await scope.health()
    lark, pending = health.get("lark", "?"), health.get("inbox_pending", "?")
    return health, Said("tool_health", lark=lark, pending=pending)


READ_TOOLS: tuple[Tool, ...] = (
    Tool(
        "list_incidents",
        "Incidents of this chat. status=active: every one not yet resolved (escalated ones "
        "first: a person must act), whatever its age; resolved, escalated or all: newest "
        "first within the time window.",
        IncidentQuery,
        list_incidents,
    ),
    Tool(
        "incident_detail",
        "One incident: labels, summary, diagnosis and its audit timeline.",
        IncidentRef,
        incident_detail,
    ),
    Tool(
        "list_jobs",
        "This chat's scheduled jobs: rule, next runs, last result.",
        NoParams,
        list_jobs,
    ),
    Tool(
        "list_job_runs",
        "Runs of this chat's scheduled jobs (one job or all), e.g. the failed ones this week.",
        RunQuery,
        list_job_runs,
    ),
    Tool(
        "analyze_failed_run",
        "The latest failed run of a job: its error, the likely cause and a suggestion.",
        JobRef,
        analyze_failed_run,
    ),
    Tool(
        "list_plugins",
        "The plugins (diagnostic checks and fixes) and their risk.",
        NoParams,
        list_plugins,
    ),
    Tool("list_runbooks", "The runbooks: alert matchers, checks, fix.", NoParams, list_runbooks),
    Tool(
        "similar_incidents",
        "Past incidents and notes similar to an incident of this chat or to a text.",
        SimilarQuery,
        similar_incidents,
    ),
    Tool(
        "system_health",
        "The bot's own health: Lark connection, inbox queue depth, scheduler leader, model.",
        NoParams,
        system_health,
    ),
)
