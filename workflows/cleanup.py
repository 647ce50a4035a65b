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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy import text

from storage.database import Database
from storage.purge import CLOSED, Step, cutoff, purge
from storage.retention import RetentionConfig

log = logging.getLogger(__name__)

QUIET_MINUTES = 10
CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
_CLOSED_SQL = ", ".join(f"'{status}'" for status in CLOSED)

# finished runs with checkpoints, `:limit` by incident id after `:after`; `{age}` bounds the
# incident's last change, `{more}` adds a condition on the thread's checkpoints (constants only)
_FINISHED = """
SELECT i.id, i.run_id::text AS thread_id FROM incidents i
WHERE i.id > :after
  AND i.status IN ({closed})
  AND i.updated_at < now() - make_interval(mins => :quiet)
  AND {age}
  AND EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = i.run_id::text {more})
  AND NOT EXISTS (
      SELECT 1 FROM approvals a WHERE a.run_id = i.run_id AND a.status = 'pending')
  AND NOT EXISTS (
      SELECT 1 FROM checkpoint_writes w
      WHERE w.thread_id = i.run_id::text AND w.checkpoint_ns = '' AND w.channel = '__interrupt__'
        AND w.checkpoint_id = (
            SELECT max(l.checkpoint_id) FROM checkpoints l
            WHERE l.thread_id = i.run_id::text AND l.checkpoint_ns = ''))
ORDER BY i.id
LIMIT :limit
"""
# the rows `adelete_thread` removes
_ALL_ROWS = """
SELECT
  (SELECT count(*) FROM checkpoints WHERE thread_id = ANY(:threads)),
  (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = ANY(:threads)),
  (SELECT count(*) FROM checkpoint_writes WHERE thread_id = ANY(:threads))
"""
# the rows `aprune(..., strategy="keep_latest")` removes: everything but each namespace's latest
# checkpoint, its writes and the blobs it references
_UNKEPT_ROWS = """
WITH latest AS (
  SELECT DISTINCT ON (thread_id, checkpoint_ns) thread_id, checkpoint_ns, checkpoint_id, checkpoint
  FROM checkpoints WHERE thread_id = ANY(:threads)
  ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC)
SELECT
  (SELECT count(*) FROM checkpoints c WHERE c.thread_id = ANY(:threads) AND NOT EXISTS (
      SELECT 1 FROM latest l WHERE l.thread_id = c.thread_id
        AND l.checkpoint_ns = c.checkpoint_ns AND l.checkpoint_id = c.checkpoint_id)),
  (SELECT count(*) FROM checkpoint_blobs b WHERE b.thread_id = ANY(:threads) AND NOT EXISTS (
      SELECT 1 FROM latest l WHERE l.thread_id = b.thread_id
        AND l.checkpoint_ns = b.checkpoint_ns
        AND l.checkpoint -> 'channel_versions' ->> b.channel = b.version)),
  (SELECT count(*) FROM checkpoint_writes w WHERE w.thread_id = ANY(:threads) AND NOT EXISTS (
      SELECT 1 FROM latest l WHERE l.thread_id = w.thread_id
        AND l.checkpoint_ns = w.checkpoint_ns AND l.checkpoint_id = w.checkpoint_id))
"""


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
        age = f"i.updated_at < {cutoff()}"
        async for threads in _finished(db, age, "", {"days": days}, per_batch):
            await _tally(db, _ALL_ROWS, threads, step)
            if not dry_run:
                for thread in threads:
                    await saver.adelete_thread(thread)
            report.runs_deleted += len(threads)
    if config.prune_finished:
        # younger than the deletion age (older ones were just deleted, or would be)
        age = "true" if days is None else f"i.updated_at >= {cutoff()}"
        params = {} if days is None else {"days": days}
        more = "AND c.checkpoint_id <> (SELECT max(m.checkpoint_id) FROM checkpoints m "
        more += "WHERE m.thread_id = c.thread_id AND m.checkpoint_ns = c.checkpoint_ns)"
        async for threads in _finished(db, age, more, params, per_batch):
            counted = Step("prune")
            await _tally(db, _UNKEPT_ROWS, threads, counted)
            if not dry_run:
                try:
                    await saver.aprune(threads, strategy="keep_latest")
                except (NotImplementedError, psycopg.Error) as exc:
                    # a DeltaChannel, or a thread changed meanwhile: the next pass tries again
                    log.warning("retention: pruning %d runs failed: %s", len(threads), exc)
                    continue
            for table, rows in counted.rows.items():
                step.add(table, rows)
            report.runs_pruned += len(threads)
    step.seconds = time.perf_counter() - began
    return step


async def _finished(
    db: Database, age: str, more: str, params: dict[str, Any], per_batch: int
) -> AsyncIterator[list[str]]:
    """Batches of finished runs' thread ids matching `age` (and `more` on their checkpoints)."""
    query = text(_FINISHED.format(closed=_CLOSED_SQL, age=age, more=more))
    after = 0
    while True:
        bounds = {"after": after, "limit": per_batch, "quiet": QUIET_MINUTES}
        async with db.session() as session:
            rows = (await session.execute(query, {**params, **bounds})).all()
        if not rows:
            return
        after = int(rows[-1][0])
        yield [str(row[1]) for row in rows]


async def _tally(db: Database, query: str, threads: Sequence[str], step: Step) -> None:
    async with db.session() as session:
        counts = (await session.execute(text(query), {"threads": list(threads)})).one()
    for table, count in zip(CHECKPOINT_TABLES, counts, strict=True):
        step.add(table, int(count))
