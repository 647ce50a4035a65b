"""Jobs that remember: every run of a scheduled job is kept as knowledge, and a new run is told
what the job and its targets did before. No model is needed for any of it.

A finished run is remembered as a short redacted document (the task, the result, its lines)
embedded into `knowledge` (kind `job_run`, one row per run) with the job, the targets it touched
and whether it succeeded. Before a run, `before` gives the job's failure streak, its trend (the
latest runs, their result and duration) and the past runs of this job or of these targets that
found something wrong, nearest to the task ("last Tuesday 09:00 db-2's CPU was high too").
After a failed run, `failures_like` gives the similar past failures of any job, each with when
its job recovered and the fix of a similar remembered incident when there is one.

Usage::

    memory = JobMemory(db, build_embedder("hashing"))
    history = await memory.before(schedule, targets_of(schedule.action, schedule.task))
    history.streak, history.trend, history.seen
    await memory.remember(schedule, run, ok=False, summary="…", lines=[…], targets=["db-2"])
    similar = await memory.failures_like(schedule, run.id, "host_load: load 9.5 on db-2")
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from storage import job_history
from storage.database import Database
from storage.knowledge import nearest_among, remember
from storage.models import Knowledge, Schedule, ScheduleRun
from workflows.memory.document import clip, redact
from workflows.memory.embedding import Embedder

TARGET_KEYS = ("host", "instance", "target", "namespace", "deployment", "service", "database")
# a host-like name in a task: db-2, web-01, redis-cache-3
_HOST = re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)*-\d+\b", re.IGNORECASE)
TREND = 20  # runs shown in a job's trend
SEEN = 3  # past runs recalled for a new one
KEEP = 200  # remembered runs per job: the oldest beyond go
FAILED_MARK = "❌"
MIN_SIMILARITY = 0.3
INCIDENT_FIX_SIMILARITY = 0.5


@dataclass(frozen=True)
class PastRun:
    """A remembered run recalled for a new one."""

    schedule_id: int
    fire_time: datetime
    ok: bool
    text: str  # what it found: its first failing line, else its summary (redacted)
    targets: tuple[str, ...]
    similarity: float
    recovered_at: datetime | None = None  # failures: when the job next succeeded
    fix: str | None = None  # failures: the fix of a similar remembered incident


@dataclass(frozen=True)
class TrendPoint:
    fire_time: datetime
    ok: bool
    seconds: float | None  # how long it ran, when known


@dataclass(frozen=True)
class JobHistory:
    """What a job's past says before it runs."""

    streak: int  # consecutive failures of its latest runs (0: the last one succeeded)
    trend: tuple[TrendPoint, ...]  # oldest first
    seen: tuple[PastRun, ...]  # past runs of the job or its targets that found something


def targets_of(action: Mapping[str, Any], task: str) -> list[str]:
    """What a job touches: its steps' host, URL, namespace… parameters and host-like names in
    its task, lower-cased, in order, without repeats."""
    found: list[str] = []
    params: list[Mapping[str, Any]] = [dict(action.get("params") or {})]
    params += [dict(step.get("params") or {}) for step in action.get("steps") or []]
    for values in params:
        for key in TARGET_KEYS:
            if isinstance(values.get(key), str) and values[key]:
                found.append(values[key])
        url = values.get("url")
        if isinstance(url, str) and urlsplit(url).hostname:
            found.append(str(urlsplit(url).hostname))
    found += _HOST.findall(task)
    unique: list[str] = []
    for target in (t.lower()[:100] for t in found):
        if target not in unique:
            unique.append(target)
    return unique[:10]


def finding(ok: bool, summary: str, lines: Sequence[str]) -> str:
    """The line that says what a run found: its first failing line, else its summary."""
    failing = [line for line in lines if line.startswith(FAILED_MARK)]
    chosen = failing[0].removeprefix(FAILED_MARK).strip() if failing and not ok else summary
    return clip(redact(chosen), 300)


class JobMemory:
    def __init__(self, db: Database, embedder: Embedder, *, keep: int = KEEP) -> None:
        self.db = db
        self.embedder = embedder
        self.keep = keep

    async def remember(
        self,
        schedule: Schedule,
        run: ScheduleRun,
        *,
        ok: bool,
        summary: str,
        lines: Sequence[str],
        targets: Sequence[str],
    ) -> int:
        """Keep one finished run (and only the job's `keep` newest); its knowledge id."""
        found = finding(ok, summary, lines)
        document = "\n".join(
            [clip(redact(schedule.task), 300), found, *(clip(redact(x), 300) for x in lines[:12])]
        )
        [vector] = await self.embedder.embed([f"{' '.join(targets)}\n{document}"])
        meta = {
            "schedule_id": schedule.id,
            "run_id": run.id,
            "ok": ok,
            "fire_time": run.fire_time.isoformat(),
            "targets": list(targets),
            "finding": found,
        }
        async with self.db.session() as session:
            kept = await remember(
                session,
                kind=job_history.KIND,
                source_id=f"{schedule.id}:{run.id}",
                title=clip(redact(schedule.task), 300),
                content=document,
                embedding=vector,
                model=self.embedder.name,
                meta=meta,
            )
            await job_history.forget_beyond(session, schedule.id, keep=self.keep)
            return kept

    async def before(self, schedule: Schedule, targets: Sequence[str]) -> JobHistory:
        """The job's streak, trend and the relevant past runs, before it runs again."""
        finished = await job_history.latest_finished(self.db, schedule.id, limit=TREND)
        streak = 0
        for run in finished:
            if run.status != "failed":
                break
            streak += 1
        trend = tuple(
            TrendPoint(
                run.fire_time,
                run.status == "succeeded",
                (run.finished_at - run.created_at).total_seconds() if run.finished_at else None,
            )
            for run in reversed(finished)
        )
        [vector] = await self.embedder.embed([f"{' '.join(targets)}\n{redact(schedule.task)}"])
        async with self.db.session() as session:
            rows = await job_history.runs_like(
                session,
                vector,
                schedule_id=schedule.id,
                targets=targets,
                failed=True,
                limit=SEEN,
            )
        seen = tuple(_past(item, distance) for item, distance in rows)
        return JobHistory(streak, trend, seen)

    async def failures_like(self, schedule: Schedule, run_id: int, text: str) -> list[PastRun]:
        """Past failures (of any job) like this one, with when they recovered and a similar
        incident's fix."""
        [vector] = await self.embedder.embed([redact(text)])
        async with self.db.session() as session:
            rows = await job_history.runs_like(
                session, vector, failed=True, exclude=[f"{schedule.id}:{run_id}"], limit=SEEN
            )
            incidents = await nearest_among(session, vector, kinds=["incident"], limit=1)
        fix = None
        if incidents and 1.0 - incidents[0][1] >= INCIDENT_FIX_SIMILARITY:
            raw = (incidents[0][0].meta or {}).get("fix")
            fix = clip(str(raw), 200) if raw else None
        found = []
        for item, distance in rows:
            past = _past(item, distance)
            if past.similarity < MIN_SIMILARITY:
                continue
            back = await job_history.recovered_after(self.db, past.schedule_id, past.fire_time)
            found.append(
                PastRun(
                    past.schedule_id,
                    past.fire_time,
                    past.ok,
                    past.text,
                    past.targets,
                    past.similarity,
                    recovered_at=back,
                    fix=fix,
                )
            )
        return found


def _past(item: Knowledge, distance: float) -> PastRun:
    meta: dict[str, Any] = item.meta or {}
    return PastRun(
        schedule_id=int(meta.get("schedule_id", 0)),
        fire_time=datetime.fromisoformat(str(meta.get("fire_time"))),
        ok=bool(meta.get("ok")),
        text=str(meta.get("finding", "")),
        targets=tuple(str(t) for t in meta.get("targets") or []),
        similarity=min(1.0, max(0.0, 1.0 - distance)),
    )
