"""Job memory around a run: the history recalled before it, and after it the run kept and the
history its card shows (worded by the model when one is configured). Memory never stops a job:
when it cannot be read or written the run goes on and its card has no history.

    history = await recall(memory, schedule, targets)
    view = await keep(memory, schedule, run, Outcome(ok, summary, lines), targets, history,
                      agent=agent, language="zh")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.logs import get_logger
from cards.schedules import PastRunView, RunMemoryView
from storage.models import Schedule, ScheduleRun
from workflows.llm.agent import DiagnosisAgent
from workflows.llm.summary import word_history
from workflows.memory.jobs import JobHistory, JobMemory, PastRun

log = get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a run came to."""

    ok: bool
    summary: str
    lines: Sequence[str] = ()


async def recall(
    memory: JobMemory | None, schedule: Schedule, targets: list[str]
) -> JobHistory | None:
    """What the job's past says before it runs (None without memory or when it cannot be read)."""
    if memory is None:
        return None
    try:
        return await memory.before(schedule, targets)
    except Exception as exc:
        log.warning("jobs.history_failed", schedule=schedule.id, error=str(exc))
        return None


async def keep(
    memory: JobMemory | None,
    schedule: Schedule,
    run: ScheduleRun,
    outcome: Outcome,
    targets: list[str],
    history: JobHistory | None,
    *,
    agent: DiagnosisAgent | None,
    language: str,
) -> RunMemoryView | None:
    """Remember the run; the history its card shows."""
    if memory is None:
        return None
    try:
        await memory.remember(
            schedule,
            run,
            ok=outcome.ok,
            summary=outcome.summary,
            lines=outcome.lines,
            targets=targets,
        )
        similar: list[PastRun] = []
        if not outcome.ok:
            text = "\n".join([outcome.summary, *outcome.lines])
            similar = await memory.failures_like(schedule, run.id, text)
    except Exception as exc:
        log.warning("jobs.memory_failed", schedule=schedule.id, error=str(exc))
        return None
    before = history.streak if history is not None else 0
    seen = history.seen if history is not None else ()
    # a past failure the analysis cites (with its recovery) is not listed twice
    cited = {(past.schedule_id, past.fire_time) for past in similar}
    seen = tuple(past for past in seen if (past.schedule_id, past.fire_time) not in cited)
    view = RunMemoryView(
        streak=before if outcome.ok else before + 1,
        seen=tuple(_past_view(past) for past in seen),
        similar_failures=tuple(_past_view(past) for past in similar),
    )
    if agent is None or not (view.seen or view.similar_failures or before):
        return view
    facts = {
        "task": schedule.task,
        "this_run": {"ok": outcome.ok, "finding": outcome.summary, "targets": targets},
        "failures_in_a_row": view.streak if not outcome.ok else 0,
        "recovered_after_failures": before if outcome.ok else 0,
        "similar_past_runs": [_past_fact(past) for past in seen],
        "similar_past_failures": [_past_fact(past) for past in similar],
    }
    worded = await word_history(agent.guard, agent.scrub, facts, language=language)
    return RunMemoryView(view.streak, view.seen, view.similar_failures, worded=worded or "")


def _past_view(past: PastRun) -> PastRunView:
    return PastRunView(
        fire_time=past.fire_time,
        text=past.text,
        targets=past.targets,
        similarity=past.similarity,
        recovered_at=past.recovered_at,
        fix=past.fix,
    )


def _past_fact(past: PastRun) -> dict[str, Any]:
    return {
        "when": past.fire_time.isoformat(timespec="minutes"),
        "targets": list(past.targets),
        "finding": past.text,
        "recovered_at": past.recovered_at.isoformat(timespec="minutes")
        if past.recovered_at
        else None,
        "fix": past.fix,
    }
