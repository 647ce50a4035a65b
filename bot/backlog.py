"""What is waiting, read from the database: inbox queue, runs in flight, gates open.

These are cluster-wide figures (every replica reads the same tables, so every replica reports
the same values: aggregate them with `max`, not `sum`). They are refreshed by one loop per
replica (every few seconds while the inbox has rows waiting, else after an incident or a gate
changes, or a minute), never on the path of an event: three grouped counts over partial or
status indexes (`ix_inbound_events_claim`, `ix_incidents_status_created`, the pending-approvals
index).

Usage::

    backlog = await read_backlog(db)        # for /status
    task = asyncio.create_task(watch_backlog(db, changed=changed))   # keeps the gauges fresh
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Gauge

from bot.logs import get_logger
from storage.approvals import APPROVALS
from storage.backlog import read_waiting
from storage.database import Database
from storage.notices import paced

log = get_logger(__name__)

REFRESH = 5.0  # seconds between reads
# a reading a change asked for comes this long after the previous one at the soonest: in an
# alert storm every incident's card, run and status changes, and each change was a reading
# (three statements) in every process, six a second
LEAST_GAP = 1.0

# a row a worker is handling stays `pending` until its transaction commits: it counts here
INBOUND_PENDING = Gauge(
    "larkops_inbound_pending", "Inbox rows not handled yet (cluster-wide)", ["type"]
)
INBOUND_OLDEST = Gauge(
    "larkops_inbound_oldest_pending_seconds",
    "Age of the oldest inbox row not handled yet (0 when none; cluster-wide)",
)
RUNS_ACTIVE = Gauge(
    "larkops_workflow_runs_active",
    "Incident runs in progress (running) or paused at an approval gate (cluster-wide)",
    ["state"],
)
APPROVALS_PENDING = Gauge(
    "larkops_approvals_pending", "Approval gates waiting for a decision (cluster-wide)", ["gate"]
)

# the incident graph's two gates, the gate of a /run action and a silence request's: their
# series exist from the start (at 0), so a first expiry shows in `increase()` and the panels
# have every gate
GATES = ("diagnosis", "proposal", "action", "silence")
for _gate in GATES:
    APPROVALS_PENDING.labels(_gate)
    for _outcome in (
        "approved",
        "rejected",
        "expired",
        "cancelled",
        "stale",
        "unauthorised",
        "role_denied",
    ):
        APPROVALS.labels(_gate, _outcome)


@dataclass(frozen=True)
class Backlog:
    inbox: Mapping[str, int] = field(default_factory=dict)  # pending inbound rows by type
    oldest_seconds: float = 0.0  # age of the oldest pending row
    runs: Mapping[str, int] = field(default_factory=dict)  # running / paused
    incidents: int = 0  # active incidents, storms included
    escalated: int = 0  # of those, escalated ones
    gates: Mapping[str, int] = field(default_factory=dict)  # pending approvals by gate

    @property
    def inbox_pending(self) -> int:
        return sum(self.inbox.values())

    @property
    def gates_waiting(self) -> int:
        return sum(self.gates.values())


async def read_backlog(db: Database) -> Backlog:
    waiting = await read_waiting(db)
    inbox, incidents, gates = waiting.inbox, waiting.incidents, waiting.gates
    runs = {"running": 0, "paused": 0}
    for status, storm, count in incidents:
        if not storm and status != "escalated":  # an escalated incident's run has ended
            runs["paused" if status == "awaiting_approval" else "running"] += count
    return Backlog(
        inbox={kind: count for kind, count, _ in inbox},
        oldest_seconds=max((age for _, _, age in inbox), default=0.0),
        runs=runs,
        incidents=sum(count for _, _, count in incidents),
        escalated=sum(count for status, _, count in incidents if status == "escalated"),
        gates=dict(gates),
    )


class _Labelled:
    """A labelled gauge whose label values that vanish from a reading drop back to 0."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.seen: set[str] = set()

    def set(self, values: Mapping[str, int]) -> None:
        for label in self.seen - set(values):
            self.gauge.labels(label).set(0)
        for label, value in values.items():
            self.gauge.labels(label).set(value)
        self.seen |= set(values)


_PENDING, _RUNS, _GATES_OPEN = (
    _Labelled(INBOUND_PENDING),
    _Labelled(RUNS_ACTIVE),
    _Labelled(APPROVALS_PENDING),
)


def publish(backlog: Backlog) -> None:
    """Set the gauges from one reading."""
    _PENDING.set(backlog.inbox)
    INBOUND_OLDEST.set(backlog.oldest_seconds)
    _RUNS.set(backlog.runs)
    _GATES_OPEN.set(backlog.gates)


async def watch_backlog(
    db: Database, every: float = REFRESH, changed: asyncio.Event | None = None
) -> None:
    """Keep the gauges fresh until cancelled; a failed read keeps the last values. With
    `changed` (set when an incident or a gate changes) a reading with nothing in the inbox is
    followed by the next change, or a minute (`storage.notices.QUIET`), not `every` seconds:
    the inbox's age grows only while something waits in it; changes in a burst make one
    reading a `LEAST_GAP`."""
    waiting = True
    clock = asyncio.get_running_loop().time
    last = -LEAST_GAP

    async def read() -> None:
        nonlocal waiting, last
        await asyncio.sleep(max(0.0, last + LEAST_GAP - clock()))
        last = clock()
        try:
            backlog = await read_backlog(db)
        except Exception as exc:  # the database is down: readiness and its alert say so
            log.warning("backlog.read_failed", error=str(exc)[:200])
            waiting = True
            return
        publish(backlog)
        waiting = backlog.inbox_pending > 0

    async def busy() -> bool:
        return waiting

    await paced(read, busy, every=every, changed=changed)
