"""Runs whose replica died: each run is held under a lease while it runs, and the leader takes
over a run still `running` whose lease nobody holds any more.

- **Liveness**: the replica running a fire holds the lease `schedule-run:<run id>` (the
  coordination backend; the scheduler's lease time, renewed every third of it) from its claim to
  its end. A run `running` for longer than one lease time whose lease the leader can take has
  lost its replica (killed, crashed, cut off): nobody else can take a lease its holder renews.
- **Decision** (`decide`, one place): run it again, once, when that cannot do anything twice:
  the job is live, was never taken over before, its kind's effects are keyed by schedule and
  fire time (`RERUNNABLE`), and it was claimed less than `RERUN_WINDOW` ago
  (Lark drops a send whose `uuid` it saw in the last hour; a later repeat could post the
  dead run's card twice). Otherwise it is recorded `interrupted` and the chat is told why.
  Either decision is in the audit timeline (`schedule.run_rerun`, `schedule.run_interrupted`).

Usage::

    reason = decide(row, run, now)          # None: run it again
    keeper = asyncio.create_task(keep(coordination, name, lease, ttl, asyncio.current_task()))
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from storage.coordination import Coordination, Lease
from storage.models import Schedule, ScheduleRun

log = logging.getLogger(__name__)

# the job kinds (`bot.scheduling.jobs`) a run of which may be run again after its replica died:
# whatever the dead run did, the repeat does not do again, as each effect is keyed by schedule
# and fire time: reminder and run cards by their send `uuid` (`schedule:<id>`, remind|run, fire
# time); a fix by its action key (`schedule:<id>:<fire time>`: one action per firing, its card's
# `uuid` by action id); the hygiene report by its `uuid` (`schedule:<id>`, report, fire time).
# Checks, reports and the agent only read.
RERUNNABLE = frozenset(
    {"reminder", "checks", "plugin", "fix", "incident_report", "hygiene_report", "agent"}
)

# Lark drops a repeated send `uuid` for an hour after its first use: a run claimed longer ago
# than this may have posted its card more than an hour before a repeat would
RERUN_WINDOW = timedelta(minutes=50)
LIVE = ("active", "completed")  # a one-shot job is `completed` from the moment it fires

# why a run taken over from a dead replica was not run again (`schedule.interrupted.<reason>`)
Interruption = Literal["not_live", "rerun_once", "too_late", "not_rerunnable"]


def lease_name(run_id: int) -> str:
    return f"schedule-run:{run_id}"


def decide(row: Schedule | None, run: ScheduleRun, now: datetime) -> Interruption | None:
    """Whether a run whose replica died is run again (None) or why it is not."""
    if row is None or row.status not in LIVE:
        return "not_live"
    if run.reruns >= 1:
        return "rerun_once"
    if now - run.created_at > RERUN_WINDOW:
        return "too_late"
    if str((row.action or {}).get("type", "reminder")) not in RERUNNABLE:
        return "not_rerunnable"
    return None


async def keep(
    coordination: Coordination,
    name: str,
    held: Lease | None,
    ttl: float,
    runner: asyncio.Task[Any],
) -> None:
    """Renew the run's lease `name` every third of `ttl` while `runner` runs it (`held` None:
    it could not be taken at the start). While the backend cannot be reached nobody can take it
    either: keep trying, and take it again once it answers; if another replica holds it by then
    (it took the run over), stop `runner`."""
    lease = held
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            if lease is not None and await coordination.renew(lease, ttl):
                continue
            again = await coordination.acquire(name, ttl)
        except Exception as exc:
            log.warning("scheduler: run lease %s not renewed (%s); retrying", name, exc)
            continue
        if again is None:
            log.error("scheduler: run lease %s taken by another replica; stopping", name)
            runner.cancel()
            return
        lease = again
