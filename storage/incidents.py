"""Incidents and what happens to them: the audit timeline, diagnoses, proposals, executions.

Every change a person or the workflow makes is an `incident_events` row (`record_event`), with
its payload redacted before it is stored.

Usage::

    incident = await get_incident(db, 42)
    await record_event(db, 42, "workflow.diagnosed", message="disk full", data={...})
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from storage import statuses
from storage.database import Database
from storage.models import Alert, Approval, Diagnosis, Execution, Incident, IncidentEvent, Proposal
from storage.redaction import Redactor
from storage.statuses import IncidentStatus, Mover

_redactor = Redactor()
WORKFLOW, UNRESOLVED, FINAL = statuses.WORKFLOW, statuses.UNRESOLVED, statuses.FINAL


async def get_incident(db: Database, incident_id: int) -> Incident | None:
    async with db.session() as session:
        return await session.get(Incident, incident_id)


async def get_by_run(db: Database, run_id: uuid.UUID | str) -> Incident | None:
    key = uuid.UUID(str(run_id))
    async with db.session() as session:
        found = await session.scalar(select(Incident).where(Incident.run_id == key))
    return found


async def by_card(db: Database, message_id: str) -> Incident | None:
    """The incident whose card is message `message_id`."""
    if not message_id:
        return None
    async with db.session() as session:
        found = await session.scalar(select(Incident).where(Incident.card_message_id == message_id))
    return found


async def update_incident(db: Database, incident_id: int, **fields: Any) -> None:
    async with db.session() as session:
        await session.execute(update(Incident).where(Incident.id == incident_id).values(**fields))


async def set_status(
    db: Database,
    incident_id: int,
    status: IncidentStatus,
    *,
    by: Mover,
    **fields: Any,
) -> bool:
    """Move an incident to `status` when the life cycle lets `by` move it there from where it
    is (`storage.statuses.MOVES`); returns whether the row changed."""
    statement = update(Incident).where(
        Incident.id == incident_id, Incident.status.in_(statuses.MOVES.get((status, by), ()))
    )
    if status == "resolved":
        fields.setdefault("resolved_at", func.now())
    if status == "escalated":
        fields.setdefault("escalated_at", func.now())
    async with db.session() as session:
        result = await session.execute(statement.values(status=status, **fields))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def awaits_ack(incident: Incident) -> bool:
    """Whether nobody has acknowledged the unresolved incident (since its escalation paged
    again): its paging goes on and its card offers the Ack button. An acknowledgement made
    before an escalation that paged people again (`escalation.repaged`, set by
    `storage.pages.plan_escalation`) no longer counts (`acknowledge`); without paging the
    first acknowledgement stays."""
    if incident.status in FINAL:
        return False
    acked, escalated = incident.acknowledged_at, incident.escalated_at
    repaged = bool((incident.escalation or {}).get("repaged"))
    return acked is None or (repaged and escalated is not None and acked < escalated)


async def acknowledge(db: Database, incident_id: int, who: str) -> str:
    """Record the first acknowledgement (a person's /ack, approval or rejection) of an
    incident: the earlier one stays, unless it came before the incident's escalation (then
    this one takes the incident over: `awaits_ack`). Returns who holds the acknowledgement
    ("" when no row)."""
    stale = or_(
        Incident.acknowledged_at.is_(None),
        and_(
            Incident.escalation["repaged"].as_boolean().is_(True),
            Incident.acknowledged_at
            < func.coalesce(Incident.escalated_at, Incident.acknowledged_at),
        ),
    )
    statement = (
        update(Incident)
        .where(Incident.id == incident_id, Incident.status.in_(UNRESOLVED))  # may_acknowledge
        .values(
            acknowledged_at=case((stale, func.now()), else_=Incident.acknowledged_at),
            acknowledged_by=case((stale, who), else_=Incident.acknowledged_by),
        )
        .returning(Incident.acknowledged_by)
    )
    async with db.session() as session:
        first = (await session.execute(statement)).scalar_one_or_none()
    return str(first or "")


async def record_event(
    db: Database,
    incident_id: int | None,
    kind: str,
    *,
    actor: str = "system",
    message: str = "",
    data: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> None:
    """Append to the audit timeline."""
    async with db.session() as session:
        session.add(
            IncidentEvent(
                incident_id=incident_id,
                kind=kind,
                actor=actor,
                message=_redactor.text(message)[:4000],
                data=_redactor.data(data or {}),
                trace_id=trace_id,
            )
        )


async def request_run(db: Database, incident_id: int, requester: str) -> None:
    """Keep who asked for the incident's run (`/diagnose`) before it starts, so a run the
    sweep has to start after a crash still knows its requester (who may not approve it)."""
    await record_event(db, incident_id, "workflow.requested", actor=requester)


async def run_requester(db: Database, incident_id: int) -> str | None:
    """Who last asked for the incident's run, if anybody did."""
    async with db.session() as session:
        found: str | None = await session.scalar(
            select(IncidentEvent.actor)
            .where(
                IncidentEvent.incident_id == incident_id,
                IncidentEvent.kind == "workflow.requested",
            )
            .order_by(IncidentEvent.id.desc())
            .limit(1)
        )
        return found


async def timeline(db: Database, incident_id: int, limit: int = 200) -> Sequence[IncidentEvent]:
    async with db.session() as session:
        rows = await session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.created_at, IncidentEvent.id)
            .limit(limit)
        )
        return rows.all()


async def save_diagnosis(
    db: Database, incident_id: int, run_id: str, diagnosis: Mapping[str, Any]
) -> None:
    async with db.session() as session:
        session.add(
            Diagnosis(
                incident_id=incident_id,
                run_id=uuid.UUID(run_id),
                provider=str(diagnosis.get("provider", "rules")),
                summary=str(diagnosis.get("summary", "")),
                hypotheses=list(diagnosis.get("hypotheses", [])),
                evidence=list(diagnosis.get("evidence", [])),
                next_checks=list(diagnosis.get("next_checks", [])),
                partial=bool(diagnosis.get("partial", False)),
                details={
                    key: diagnosis[key]
                    for key in (
                        "partial_reason",
                        "fallback",
                        "similar",
                        "tool_calls",
                        "codes",
                        "council",
                    )
                    if diagnosis.get(key)
                },
            )
        )


async def save_proposal(
    db: Database,
    incident_id: int,
    run_id: str,
    *,
    plugin: str,
    params: dict[str, Any],
    risk: str,
    rationale: str,
    decision: str | None = None,
    decision_reason: str | None = None,
) -> None:
    async with db.session() as session:
        session.add(
            Proposal(
                incident_id=incident_id,
                run_id=uuid.UUID(run_id),
                plugin=plugin,
                params=params,
                risk=risk,
                rationale=rationale,
                decision=decision,
                decision_reason=decision_reason,
            )
        )


PerIncident = TypeVar("PerIncident", Diagnosis, Proposal, Approval)


async def latest(db: Database, model: type[PerIncident], incident_id: int) -> PerIncident | None:
    """The incident's newest diagnosis, proposal or approval gate."""
    async with db.session() as session:
        found: PerIncident | None = await session.scalar(
            select(model).where(model.incident_id == incident_id).order_by(model.id.desc()).limit(1)
        )
    return found


async def executions(db: Database, incident_id: int) -> Sequence[Execution]:
    async with db.session() as session:
        rows = await session.scalars(
            select(Execution).where(Execution.incident_id == incident_id).order_by(Execution.id)
        )
        return rows.all()


async def list_incidents(
    db: Database, *, active_only: bool, limit: int = 20, chat_id: str | None = None
) -> Sequence[Incident]:
    """The latest incidents; `active_only`: those not yet resolved, escalated ones first."""
    query = select(Incident).limit(limit)
    if active_only:
        escalated_first = case((Incident.status == "escalated", 0), else_=1)
        query = query.where(Incident.status.in_(UNRESOLVED)).order_by(escalated_first)
    query = query.order_by(Incident.last_seen_at.desc())
    if chat_id is not None:
        query = query.where(Incident.chat_id == chat_id)
    async with db.session() as session:
        return (await session.scalars(query)).all()


async def of_chat(
    db: Database,
    chat_id: str,
    *,
    status: str,
    since: datetime,
    service: str | None = None,
    limit: int = 10,
) -> Sequence[Incident]:
    """A chat's incidents, newest seen first: `status` "active" (every one not yet resolved,
    escalated first, `since` not applied), "all" (seen since `since`) or one status (seen
    since `since`); of one `service` when given."""
    query = select(Incident).where(Incident.chat_id == chat_id).limit(limit)
    if status == "active":
        escalated_first = case((Incident.status == "escalated", 0), else_=1)
        query = query.where(Incident.status.in_(UNRESOLVED)).order_by(escalated_first)
    else:
        query = query.where(Incident.last_seen_at >= since)
        if status != "all":
            query = query.where(Incident.status == status)
    query = query.order_by(Incident.last_seen_at.desc())
    if service:
        query = query.where(Incident.service == service)
    async with db.session() as session:
        return (await session.scalars(query)).all()


async def in_workflow(db: Database) -> Sequence[Incident]:
    """Incidents inside their workflow whose run was started (storm ones wait for /diagnose)."""
    async with db.session() as session:
        found = await session.scalars(
            select(Incident).where(Incident.status.in_(WORKFLOW), Incident.storm.is_(False))
        )
        return found.all()


async def unattended_runs(
    db: Database, *, stale_after: float, recent_gate: float
) -> list[tuple[int, uuid.UUID]]:
    """(incident id, run id) of runs nobody may be driving: inside their workflow, not storm,
    older than `stale_after` seconds, and either not waiting at a gate, or their latest gate
    was decided more than `stale_after` seconds ago, or a gate opened between `recent_gate`
    and `stale_after` seconds ago (its step may have died before its pause was checkpointed)."""
    stale = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after)
    later = aliased(Approval)
    recent = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, recent_gate)
    opening = exists().where(
        Approval.incident_id == Incident.id,
        Approval.run_id == Incident.run_id,
        Approval.status == "pending",
        Approval.created_at > recent,
        Approval.created_at < stale,
    )
    decided = exists().where(
        Approval.incident_id == Incident.id,
        Approval.run_id == Incident.run_id,
        Approval.status != "pending",
        Approval.decided_at < stale,
        ~exists().where(later.incident_id == Approval.incident_id, later.id > Approval.id),
    )
    async with db.session() as session:
        found = (
            await session.execute(
                select(Incident.id, Incident.run_id).where(
                    Incident.status.in_(WORKFLOW),
                    Incident.storm.is_(False),
                    Incident.created_at < stale,
                    or_(Incident.status != "awaiting_approval", decided, opening),
                )
            )
        ).all()
    return [(incident_id, run_id) for incident_id, run_id in found]


async def latest_alert(db: Database, incident_id: int) -> Alert | None:
    """The incident's latest alert (the one its diagnosis works from), or None."""
    async with db.session() as session:
        found = await session.scalar(
            select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id.desc()).limit(1)
        )
    return found


async def storm_since(db: Database, chat_id: str, since: datetime) -> Sequence[Incident]:
    """The chat's storm incidents opened after `since`, those with the most alerts first."""
    async with db.session() as session:
        return (
            await session.scalars(
                select(Incident)
                .where(Incident.chat_id == chat_id, Incident.storm, Incident.created_at > since)
                .order_by(Incident.alert_count.desc())
            )
        ).all()


async def in_flight(db: Database) -> bool:
    """Whether a sweep may have work: an incident inside its workflow, or a pending gate."""
    query = select(
        select(Incident.id).where(Incident.status.in_(WORKFLOW)).exists()
        | select(Approval.id).where(Approval.status == "pending").exists()
    )
    async with db.session() as session:
        return bool(await session.scalar(query))


async def page(
    db: Database,
    columns: Sequence[str],
    *,
    statuses: Sequence[str] = (),
    before: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Incidents newest first (by id), of these statuses, older than the id `before` (the
    REST API's pages): these columns of each, as plain dicts.

    The API's busiest read, so it is one statement on the driver's connection: no ORM, no
    transaction around it (a read-only statement is its own), by `ix_incidents_status_id`
    when statuses are given."""
    table = Incident.__table__
    names = ", ".join(table.c[name].name for name in columns)  # KeyError: not a column
    where: list[str] = []
    values: list[object] = []
    if statuses:
        values.append(statuses[0] if len(statuses) == 1 else list(statuses))
        where.append("status = $1" if len(statuses) == 1 else "status = ANY($1::text[])")
    if before is not None:
        values.append(before)
        where.append(f"id < ${len(values)}")
    values.append(limit)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    # the names are the table's own columns, every value a bind parameter
    sql = f"SELECT {names} FROM incidents{condition} ORDER BY id DESC LIMIT ${len(values)}"  # noqa: S608
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        return [dict(record) for record in await driver.fetch(sql, *values)]


async def audit_log(
    db: Database,
    *,
    kind: str | None = None,
    actor: str | None = None,
    incident_id: int | None = None,
    before: int | None = None,
    limit: int = 100,
) -> Sequence[IncidentEvent]:
    """The audit timeline newest first, filtered: `kind` is a prefix (`api.`, `click.`)."""
    query = select(IncidentEvent).order_by(IncidentEvent.id.desc()).limit(limit)
    if kind:
        query = query.where(IncidentEvent.kind.startswith(kind, autoescape=True))
    if actor:
        query = query.where(IncidentEvent.actor == actor)
    if incident_id is not None:
        query = query.where(IncidentEvent.incident_id == incident_id)
    if before is not None:
        query = query.where(IncidentEvent.id < before)
    async with db.session() as session:
        return (await session.scalars(query)).all()
