"""Incidents and their gates over the REST API: read, acknowledge, resolve, escalate, and
decide a gate through the same gates service as a card click (`IncidentDesk.decide`, over
`workflows.gates.decide`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from bot import decisions
from bot.api.access import ApiError, Caller, backend_of, caller
from bot.api.schemas import (
    Acknowledged,
    DecisionIn,
    DecisionOut,
    DiagnosisOut,
    EventOut,
    GateOut,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    ResolveIn,
)
from bot.incidents.desk import IncidentRefused
from storage import approvals, incidents
from storage.models import Diagnosis, Incident
from storage.statuses import UNRESOLVED, IncidentStatus
from workflows.gates import Click

router = APIRouter(tags=["incidents"])
Id = Annotated[int, Path(ge=1, le=2**62)]
StatusFilter = Literal[IncidentStatus, "active"]
_COLUMNS = tuple(IncidentOut.model_fields)  # what a listed incident shows: no more is read
GateFilter = Literal["pending", "approved", "rejected", "expired", "cancelled"]
# a refused decision: HTTP status and code (the words are the card's own)
_REFUSED = {
    "unknown": (404, "action.unknown"),
    "expired": (409, "gate.expired"),
    "stale": (409, "gate.stale"),
    "duplicate": (409, "gate.duplicate"),
    "not_approver": (403, "gate.not_approver"),
    "own_request": (403, "gate.own_request"),
}


async def _incident(who: Caller, incident_id: int) -> Incident:
    row = await incidents.get_incident(who.services.db, incident_id)
    if row is None:
        raise ApiError(404, "not_found", who.say("api.no_incident", id=incident_id))
    return row


@router.get("/incidents", response_model=IncidentPage, summary="incidents, newest first")
async def list_incidents(
    who: Annotated[Caller, Depends(caller)],
    status: Annotated[list[StatusFilter] | None, Query()] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """`status` may repeat; `active` means every unresolved status. Pages by id: pass
    `next_before` as `before` for the next (older) page."""
    await who.need("viewer", None)
    wanted: set[str] = set()
    for value in status or ():
        wanted.update(UNRESOLVED if value == "active" else (value,))
    rows = await incidents.page(
        who.services.db, _COLUMNS, statuses=sorted(wanted), before=before, limit=limit
    )
    last = rows[-1]["id"] if len(rows) == limit else None
    # the API's busiest answer: the rows are read into the schema once, in pydantic's core,
    # and written as JSON from there (FastAPI would check the model again, then encode it)
    page = IncidentPage.model_validate({"incidents": rows, "next_before": last})
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/incidents/{incident_id}", response_model=IncidentDetail)
async def show_incident(incident_id: Id, who: Annotated[Caller, Depends(caller)]) -> IncidentDetail:
    """An incident with its timeline, its gates and its latest diagnosis."""
    row = await _incident(who, incident_id)
    await who.need("viewer", row.chat_id)
    db = who.services.db
    timeline = await incidents.timeline(db, incident_id)
    gate_rows = await approvals.listing(db, incident_id=incident_id, limit=50)
    found = await incidents.latest(db, Diagnosis, incident_id)
    diagnosis = None
    if found is not None:
        diagnosis = DiagnosisOut(
            summary=found.summary,
            provider=found.provider,
            partial=found.partial,
            hypotheses=list(found.hypotheses),
            evidence=list(found.evidence),
            next_checks=list(found.next_checks),
        )
    return IncidentDetail(
        incident=IncidentOut.of(row),
        timeline=[EventOut.of(event, who.say) for event in timeline],
        gates=[GateOut.of(gate, row.chat_id) for gate in gate_rows],
        diagnosis=diagnosis,
    )


@router.post("/incidents/{incident_id}/ack", response_model=Acknowledged)
async def ack(incident_id: Id, who: Annotated[Caller, Depends(caller)]) -> Acknowledged:
    """Someone is on it (as `/ack`): paging stops, the card says who (operators)."""
    row = await _incident(who, incident_id)
    await who.need("operator", row.chat_id)
    try:
        first = await who.services.desk.acknowledge(incident_id, who.open_id, trace_id=who.trace_id)
    except IncidentRefused as exc:
        raise _refused(who, exc) from None
    await who.audit(incident_id, "api.incident.ack", first=first)
    return Acknowledged(
        incident=IncidentOut.of(await _incident(who, incident_id)), acknowledged_by=first
    )


def _refused(who: Caller, exc: IncidentRefused) -> ApiError:
    """The desk's refusal as the API answers it (404 or 409, with the reason's code)."""
    if exc.reason == "not_found":
        return ApiError(404, "not_found", who.say("api.no_incident", id=exc.incident_id))
    if exc.reason == "escalated":
        text = who.say("incident.already_escalated", id=exc.incident_id)
        return ApiError(409, "escalated", text)
    status = who.say(f"card.status.{exc.status}")
    text = who.say("incident.already_closed", id=exc.incident_id, status=status)
    return ApiError(409, "closed", text)


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentOut)
async def resolve(
    incident_id: Id, who: Annotated[Caller, Depends(caller)], body: ResolveIn | None = None
) -> IncidentOut:
    """Resolve by hand (as `/resolve`, approvers); a paused workflow ends."""
    row = await _incident(who, incident_id)
    await who.need("approver", row.chat_id)
    note = body.note if body is not None else ""
    try:
        await who.services.desk.resolve(incident_id, who.open_id, note)
    except IncidentRefused as exc:
        raise _refused(who, exc) from None
    await who.audit(incident_id, "api.incident.resolve", note)
    return IncidentOut.of(await _incident(who, incident_id))


@router.post("/incidents/{incident_id}/escalate", response_model=IncidentOut)
async def escalate(incident_id: Id, who: Annotated[Caller, Depends(caller)]) -> IncidentOut:
    """Escalate to on-call by hand (as `/escalate`, approvers)."""
    row = await _incident(who, incident_id)
    await who.need("approver", row.chat_id)
    try:
        await who.services.desk.escalate(incident_id, who.open_id)
    except IncidentRefused as exc:
        raise _refused(who, exc) from None
    await who.audit(incident_id, "api.incident.escalate")
    return IncidentOut.of(await _incident(who, incident_id))


@router.get("/gates", response_model=list[GateOut], tags=["gates"])
async def list_gates(
    who: Annotated[Caller, Depends(caller)],
    status: GateFilter | None = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[GateOut]:
    """Approval gates, newest first."""
    await who.need("viewer", None)
    db = who.services.db
    rows = await approvals.listing(db, status=status, incident_id=incident_id, limit=limit)
    return [GateOut.of(row, await approvals.chat_of(db, row)) for row in rows]


@router.post("/gates/{gate_id}/decision", response_model=DecisionOut, tags=["gates"])
async def decide(
    gate_id: Id, body: DecisionIn, request: Request, who: Annotated[Caller, Depends(caller)]
) -> DecisionOut:
    """Approve or reject, decided exactly as a card click: the gate's approvers, the requester
    may not approve their own run, critical gates need two approvers, expiry, audit."""
    services = who.services
    db = services.db
    row = await approvals.get(db, gate_id)
    if row is None:
        raise ApiError(404, "not_found", who.say("api.no_gate", id=gate_id))
    chat_id = await approvals.chat_of(db, row)
    roles = await who.roles(chat_id)
    click = Click(
        run_id=str(row.run_id),
        gate=row.gate,
        token=row.interrupt_id,
        incident_id=row.incident_id,
        decision=body.decision,
    )
    verdict = await services.desk.decide(click, roles, who.open_id, chat_id, trace_id=who.trace_id)
    await who.audit(
        row.incident_id,
        "api.gate.decision",
        body.comment or "",
        gate=gate_id,
        decision=body.decision,
        refusal=verdict.refusal,
    )
    if verdict.refusal is not None or verdict.gate is None:
        status, key = _REFUSED[verdict.refusal or "unknown"]
        words = who.say(key, status=row.status) if key == "gate.stale" else who.say(key)
        needs = "approver" if verdict.refusal == "not_approver" else None
        raise ApiError(status, verdict.refusal or "unknown", words, needs=needs)
    # the run goes on after the answer (a fix may take a while), as after a card click
    backend_of(request).later(
        decisions.carry_out(services, verdict.gate, verdict.closed, body.decision, who.open_id)
    )
    return DecisionOut(
        gate=GateOut.of(verdict.gate, chat_id),
        decided=verdict.closed,
        approvals=verdict.approvals_so_far,
        required=verdict.gate.required_approvals,
    )
