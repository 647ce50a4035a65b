"""Everything an incident's card shows, read in one statement.

The card is drawn from the incident and its newest diagnosis, proposal, gate, fix run and three
timeline events, its war room and its postmortem. Read one by one that was nine sessions (each
a transaction of its own) for every card drawn; in an alert storm the cards of the repeating
incidents are redrawn every second, so those reads were most of the bot's statements (issue
22). Here they are one `SELECT` with a lateral join per newest row; the paging steps, a list,
are a second statement in the same transaction when the card shows them.

    rows = await card_rows(db, incident_id, paging=True)   # None: no such incident
    rows.diagnosis, rows.gate, rows.verified, rows.pages
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select, true
from sqlalchemy.orm import aliased

from storage.database import Database
from storage.models import (
    Approval,
    Diagnosis,
    Execution,
    Incident,
    IncidentEvent,
    Page,
    Postmortem,
    Proposal,
    WarRoom,
)

# the timeline events a card shows: the verification, the policy's verdict, the proposal's title
EVENTS = ("workflow.verified", "policy.decided", "workflow.proposed")


@dataclass(frozen=True)
class CardRows:
    incident: Incident
    diagnosis: Diagnosis | None
    proposal: Proposal | None
    gate: Approval | None
    execution: Execution | None  # the newest run of the fix (`execute` step)
    verified: IncidentEvent | None
    decided: IncidentEvent | None
    proposed: IncidentEvent | None
    war_room: WarRoom | None
    postmortem: Postmortem | None
    pages: Sequence[Page] = ()  # when asked for


def _newest(model: Any, *where: Any) -> Any:
    """The incident's newest row of `model` (matching `where`), as a lateral subquery."""
    newest = (
        select(model)
        .where(model.incident_id == Incident.id, *where)
        .order_by(model.id.desc())
        .limit(1)
        .lateral()
    )
    return aliased(model, newest)


@cache
def _statement() -> Select[Any]:
    """The statement, built once: building it (seven lateral subqueries) cost more than
    running it, and a statement reused keeps its compiled form's cache key."""
    newest = [
        _newest(Diagnosis),
        _newest(Proposal),
        _newest(Approval),
        _newest(Execution, Execution.step == "execute"),
        *(_newest(IncidentEvent, IncidentEvent.kind == kind) for kind in EVENTS),
    ]
    query = (
        select(Incident, *newest, WarRoom, Postmortem)
        .select_from(Incident)
        .where(Incident.id == bindparam("incident_id"))
    )
    for row in newest:
        query = query.outerjoin(row, true())
    query = query.outerjoin(WarRoom, WarRoom.incident_id == Incident.id)
    return query.outerjoin(Postmortem, Postmortem.incident_id == Incident.id)


async def card_rows(db: Database, incident_id: int, *, paging: bool = False) -> CardRows | None:
    """What the incident's card shows (`paging`: with its paging steps), None when there is
    no such incident."""
    async with db.session() as session:
        found = (await session.execute(_statement(), {"incident_id": incident_id})).first()
        if found is None:
            return None
        pages: Sequence[Page] = ()
        if paging:
            listed = select(Page).where(Page.incident_id == incident_id).order_by(Page.step)
            pages = (await session.scalars(listed)).all()
    incident, diagnosis, proposal, gate, execution, verified, decided, proposed, room, pm = found
    return CardRows(
        incident=incident,
        diagnosis=diagnosis,
        proposal=proposal,
        gate=gate,
        execution=execution,
        verified=verified,
        decided=decided,
        proposed=proposed,
        war_room=room,
        postmortem=pm,
        pages=pages,
    )
