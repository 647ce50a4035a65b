"""One retention cleanup pass: LangGraph checkpoints of finished runs, then old rows.

A run's thread id is its incident's `run_id`. A run is *finished* when its incident is closed
(resolved, escalated, suppressed), no approval of the run is pending, and the run's latest
checkpoint is not paused at a gate (it has no `__interrupt__` write). Only finished runs whose
incident has not changed for `QUIET` are touched (the last node may still be writing its final
checkpoint just after the status changed):

- older than `checkpoints_after_days`: the whole thread goes (`adelete_thread`);
- younger, with `prune_finished`: only its final checkpoint stays (`aprune`, "keep_latest"), so
  the run's end state can still be looked at while a dozen intermediate checkpoints are freed.

Runs that are active or paused are never touched, not even pruned: they live minutes to hours
(a gate expires after `LARKOPS_APPROVAL_TTL_MINUTES`) and hold few checkpoints, while pruning a
thread that a click may resume at the same moment can fail with a serialization error.

Row counts are taken just before each batch of runs is deleted or pruned (the rows that go);
a dry run reports the same counts and changes nothing.

Usage::

    report = await clean(db, saver, RetentionConfig(), dry_run=False)
    print(report.tables, report.seconds)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver

from storage import checkpoints
from storage.database import Database
from storage.purge import Step, purge
from storage.retention import RetentionConfig

log = logging.getLogger(__name__)

QUIET_MINUTES = 10
CHECKPOINT_TABLES = checkpoints.TABLES


@dataclass
class CleanupReport:
    """One pass: its steps in order, the finished runs deleted and pruned, the time it took."""

    dry_run: bool
    steps: list[Step] = field(default_factory=list)
    runs_deleted: int = 0
    runs_pruned: int = 0
    seconds: float = 0.0

    @property
    def tables(self) -> dict[str, int]:
        """Rows per table, over every step."""
        totals: dict[str, int] = {}
        for step in self.steps:
            for table, rows in step.rows.items():
                totals[table] = totals.get(table, 0) + rows
        return totals

    @property
    def total(self) -> int:
        return sum(self.tables.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "tables": self.tables,
            "total": self.total,
            "runs": {"deleted": self.runs_deleted, "pruned": self.runs_pruned},
            "steps": [
                {"name": s.name, "rows": s.rows, "seconds": round(s.seconds, 3)} for s in self.steps
            ],
        }


async def clean(
    db: Database,
    checkpointer: BaseCheckpointSaver[Any] | None,
    config: RetentionConfig,
    *,
    dry_run: bool = False,
) -> CleanupReport:
    """Run one pass. Without a checkpointer only rows are cleaned (the checkpoint step is left
    out of the report)."""
    began = time.perf_counter()
    report = CleanupReport(dry_run=dry_run)
    if checkpointer is not None:
        report.steps.append(await _checkpoints(db, checkpointer, config, dry_run, report))
    report.steps.extend(await purge(db, config, dry_run=dry_run))
    report.seconds = time.perf_counter() - began
    return report


async def _checkpoints(
    db: Database,
    saver: BaseCheckpointSaver[Any],
    config: RetentionConfig,
    dry_run: bool,
    report: CleanupReport,
) -> Step:
    step = Step("checkpoints", dict.fromkeys(CHECKPOINT_TABLES, 0))
    began = time.perf_counter()
    per_batch = max(1, config.batch // 100)
    days = config.checkpoints_after_days
    if days is not None:
        finished = checkpoints.finished_before(
            db, days=days, quiet_minutes=QUIET_MINUTES, per_batch=per_batch
        )
        async for threads in finished:
            for table, rows in (await checkpoints.thread_rows(db, threads)).items():
                step.add(table, rows)
            if not dry_run:
                for thread in threads:
                    await saver.adelete_thread(thread)
            report.runs_deleted += len(threads)
    if config.prune_finished:
        # younger than the deletion age (older ones were just deleted, or would be)
        finished = checkpoints.finished_with_history(
            db, younger_than_days=days, quiet_minutes=QUIET_MINUTES, per_batch=per_batch
        )
        async for threads in finished:
            counted = await checkpoints.superseded_rows(db, threads)
            if not dry_run:
                try:
                    await saver.aprune(threads, strategy="keep_latest")
                except (NotImplementedError, psycopg.Error) as exc:
                    # a DeltaChannel, or a thread changed meanwhile: the next pass tries again
                    log.warning("retention: pruning %d runs failed: %s", len(threads), exc)
                    continue
            for table, rows in counted.items():
                step.add(table, rows)
            report.runs_pruned += len(threads)
    step.seconds = time.perf_counter() - began
    return step
