"""Builds the scheduling parts for a running bot: the job runner, the elected scheduler and the
chat desk, and the small callbacks between them (missed-run reports, run-now, scheduled fixes,
the hygiene report). Started, it also keeps the advisor's system report jobs in line with the
`advisor:` section (`bot.scheduling.advisor`), in the background.

Usage::

    parts = build_scheduling(settings, db, coordination, api, operations, reports)
    await parts.start(); ...; await parts.stop()
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from bot.config import Settings
from bot.lark.api import LarkApi, idempotency_key
from bot.logs import event_trace_id, get_logger, trace_context
from bot.operations import OperationsDesk
from bot.reports import ReportDesk
from bot.scheduling.advisor import ensure_reports
from bot.scheduling.desk import ScheduleDesk
from bot.scheduling.jobs import JobRunner
from bot.scheduling.leader import SchedulerService
from bot.scheduling.recovery import Interruption
from cards.schedules import interrupted_card, missed_card
from storage import schedules, tracing
from storage.coordination import Coordination
from storage.database import Database
from storage.models import Schedule, ScheduleRun
from storage.tasks import finish
from workflows.llm.agent import DiagnosisAgent
from workflows.memory.jobs import JobMemory
from workflows.schedule.compiler import COALESCE, MISFIRE_GRACE_TIME, trigger_for
from workflows.schedule.spec import SpecError, from_json

log = get_logger(__name__)


def trigger_of(row: Schedule) -> BaseTrigger | None:
    """The row's trigger, or None when its stored spec no longer compiles."""
    try:
        return trigger_for(from_json(row.spec))
    except (SpecError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Scheduling:
    runner: JobRunner
    service: SchedulerService
    desk: ScheduleDesk
    settings: Settings
    db: Database
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Elect the scheduler; keep the advisor's report jobs in line, in the background."""
        self.spawn(self._ensure_advisor())
        await self.service.start()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background (`stop` waits for it)."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _ensure_advisor(self) -> None:
        try:
            if await ensure_reports(self.settings, self.db):
                self.service.wake()
        except Exception as exc:  # the bot runs without the weekly report rather than not at all
            log.warning("advisor.schedules_failed", error=str(exc))

    async def stop(self) -> None:
        await self.service.stop()
        await finish(self.tasks, 10, "scheduled jobs")


def build_scheduling(
    settings: Settings,
    db: Database,
    coordination: Coordination,
    api: LarkApi,
    operations: OperationsDesk,
    reports: ReportDesk,
    agent: DiagnosisAgent | None = None,
    memory: JobMemory | None = None,
) -> Scheduling:
    config = settings.scheduling
    replica = f"{socket.gethostname()}:{os.getpid()}"

    async def post_fix(
        schedule: Schedule, action: dict[str, Any], fire_time: datetime | None
    ) -> None:
        # one firing is one action: a firing run again (its replica died before the card was
        # posted) finds the action it asked for and posts its card, never a second action
        firing = fire_time.isoformat() if fire_time is not None else None
        outcome = await operations.request(
            schedule.chat_id,
            schedule.created_by,
            str(action.get("plugin")),
            dict(action.get("params") or {}),
            force_approval=True,
            key=f"schedule:{schedule.id}:{firing}" if firing is not None else None,
        )
        key = idempotency_key(f"schedule:{schedule.id}", "fix", str(outcome.action.id))

        async def send(card: dict[str, Any]) -> str:
            return await api.send_card(schedule.chat_id, card, uuid=key)

        await operations.post_card(outcome, send)

    async def post_report(schedule: Schedule, days: int, fire_time: datetime | None) -> None:
        card = await reports.report(schedule.chat_id, days * 24)
        # keyed by the firing: a firing run again (its replica died) does not post it twice
        firing = (fire_time or datetime.now(UTC)).isoformat()
        await api.send_card(
            schedule.chat_id,
            card,
            uuid=idempotency_key(f"schedule:{schedule.id}", "report", firing),
        )

    runner = JobRunner(
        settings,
        db,
        api,
        operations,
        post_fix=post_fix,
        post_report=post_report,
        agent=agent,
        memory=memory,
        retries=config.retries,
        retry_delay=config.retry_delay_seconds,
    )

    async def report_missed(row: Schedule, count: int, ran_late: bool) -> None:
        card = missed_card(parts.desk.view(row, runs=1), count, ran_late, runner.say)
        key = idempotency_key(
            f"schedule:{row.id}", "missed", datetime.now(UTC).strftime("%Y%m%d%H")
        )
        try:
            await api.send_card(row.chat_id, card, uuid=key)
        except Exception as exc:
            log.warning("schedule.missed_report_failed", schedule=row.id, error=str(exc))

    async def report_interrupted(row: Schedule, run: ScheduleRun, reason: Interruption) -> None:
        card = interrupted_card(parts.desk.view(row, runs=1), run.fire_time, reason, runner.say)
        key = idempotency_key(f"schedule:{row.id}", "interrupted", run.fire_time.isoformat())
        try:
            await api.send_card(row.chat_id, card, uuid=key)
        except Exception as exc:
            log.warning("schedule.interrupted_report_failed", schedule=row.id, error=str(exc))

    async def fire(row: Schedule, run: ScheduleRun, late: bool) -> None:
        """One fire of a job: its own trace (the run's id names it), bound to its log lines."""
        trace_id = event_trace_id(f"schedule-run:{run.id}")
        attributes = {"larkops.schedule": row.id, "larkops.late": late}
        with trace_context(trace_id), tracing.root_span("schedule.fire", trace_id, attributes):
            await runner.run(row, run, late)

    service = SchedulerService(
        db,
        coordination,
        trigger_of,
        fire,
        report_missed,
        replica=replica,
        lease_ttl=config.lease_seconds,
        missed=config.missed,
        coalesce=COALESCE,
        misfire_grace=float(MISFIRE_GRACE_TIME),
        report_interrupted=report_interrupted,
    )

    def run_now(row: Schedule) -> None:
        async def go() -> None:
            now = datetime.now(UTC).replace(microsecond=0)
            run = await schedules.claim_run(db, row.id, now, replica=f"{replica}#manual")
            if run is not None:
                await service.execute(row, run, False)  # under the run's lease, as a fire

        parts.spawn(go())

    desk = ScheduleDesk(
        settings,
        db,
        operations,
        wake=service.wake,
        run_now=run_now,
        has_model=agent is not None,
        guard=agent.guard if agent is not None else None,
        scrub=agent.scrub if agent is not None else None,
        api=api,
    )
    parts = Scheduling(runner, service, desk, settings, db)
    return parts


def _zone(settings: Settings) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)
