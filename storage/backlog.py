"""What waits, counted in one transaction: pending inbound rows by type (with the oldest one's
age), active incidents by status and storm flag, pending gates by gate.

Usage::

    waiting = await read_waiting(db)
    waiting.inbox      # [("im.message.receive_v1", 3, 12.5)]: type, rows, oldest age in s
    waiting.incidents  # [("open", False, 2)]: status, storm, incidents
    waiting.gates      # [("approve_fix", 1)]: gate, pending approvals
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from storage.database import Database

_INBOX = text(
    "SELECT event_type, count(*), "
    "coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM inbound_events WHERE status = 'pending' GROUP BY event_type"
)
_INCIDENTS = text(
    "SELECT status, storm, count(*) FROM incidents "
    "WHERE status IN ('open', 'diagnosing', 'awaiting_approval', 'remediating', 'escalated') "
    "GROUP BY status, storm"
)
_GATES = text("SELECT gate, count(*) FROM approvals WHERE status = 'pending' GROUP BY gate")


@dataclass(frozen=True)
class Waiting:
    inbox: list[tuple[str, int, float]]  # event type, pending rows, oldest row's age (s)
    incidents: list[tuple[str, bool, int]]  # status, storm, active incidents
    gates: list[tuple[str, int]]  # gate, pending approvals


async def read_waiting(db: Database) -> Waiting:
    async with db.session() as session:
        inbox = (await session.execute(_INBOX)).all()
        incidents = (await session.execute(_INCIDENTS)).all()
        gates = (await session.execute(_GATES)).all()
    return Waiting(
        inbox=[(str(kind), int(count), float(age)) for kind, count, age in inbox],
        incidents=[(str(status), bool(storm), int(count)) for status, storm, count in incidents],
        gates=[(str(gate), int(count)) for gate, count in gates],
    )
