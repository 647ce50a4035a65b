"""The LangGraph checkpoint tables (`checkpoints`, `checkpoint_blobs`, `checkpoint_writes`,
`checkpoint_migrations`), read by the checkpointer's set-up and the retention cleanup: which
finished runs hold checkpoints, how many rows deleting or pruning them frees, and the set-up
lock. The saver itself (`AsyncPostgresSaver`) writes and deletes them.

A run's thread id is its incident's `run_id`. A run is *finished* when its incident is closed,
no approval of the run is pending, and its latest checkpoint is not paused at a gate (it has no
`__interrupt__` write).

Usage::

    async for threads in finished_before(db, days=14, quiet_minutes=10, per_batch=50):
        rows = await thread_rows(db, threads)            # {"checkpoints": 12, ...}
    async for threads in finished_with_history(db, younger_than_days=14, ...):
        rows = await superseded_rows(db, threads)        # what keep_latest pruning frees
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from sqlalchemy import text

from storage.database import Database
from storage.purge import CLOSED, cutoff

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
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
# a checkpoint other than its namespace's latest
_SUPERSEDED = (
    "AND c.checkpoint_id <> (SELECT max(m.checkpoint_id) FROM checkpoints m "
    "WHERE m.thread_id = c.thread_id AND m.checkpoint_ns = c.checkpoint_ns)"
)
# the rows `adelete_thread` removes
_ALL_ROWS = """
SELECT
  (SELECT count(*) FROM checkpoints WHERE thread_id = ANY(:threads)),
  (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = ANY(:threads)),
  (SELECT count(*) FROM checkpoint_writes WHERE thread_id = ANY(:threads))
"""
# the rows `aprune(..., strategy="keep_latest")` removes: everything but each namespace's latest
# checkpoint, its writes and the blobs it references; and the whole namespace of a subgraph
# called from a node (its name has the task id after a ":", as the remediation subgraph's) once
# the root checkpoint it started from is saved and is not the root's latest any more
_UNKEPT_ROWS = """
WITH latest AS (
  SELECT DISTINCT ON (thread_id, checkpoint_ns)
    thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata -> 'parents' ->> '' AS root
  FROM checkpoints WHERE thread_id = ANY(:threads)
  ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC),
kept AS (
  SELECT * FROM latest l WHERE NOT (
    position(':' IN l.checkpoint_ns) > 0
    AND EXISTS (SELECT 1 FROM checkpoints r WHERE r.thread_id = l.thread_id
        AND r.checkpoint_ns = '' AND r.checkpoint_id = l.root)
    AND l.root IS DISTINCT FROM (SELECT h.checkpoint_id FROM latest h
        WHERE h.thread_id = l.thread_id AND h.checkpoint_ns = '')))
SELECT
  (SELECT count(*) FROM checkpoints c WHERE c.thread_id = ANY(:threads) AND NOT EXISTS (
      SELECT 1 FROM kept l WHERE l.thread_id = c.thread_id
        AND l.checkpoint_ns = c.checkpoint_ns AND l.checkpoint_id = c.checkpoint_id)),
  (SELECT count(*) FROM checkpoint_blobs b WHERE b.thread_id = ANY(:threads) AND NOT EXISTS (
      SELECT 1 FROM kept l WHERE l.thread_id = b.thread_id
        AND l.checkpoint_ns = b.checkpoint_ns
        AND l.checkpoint -> 'channel_versions' ->> b.channel = b.version)),
  (SELECT count(*) FROM checkpoint_writes w WHERE w.thread_id = ANY(:threads) AND NOT EXISTS (
      SELECT 1 FROM kept l WHERE l.thread_id = w.thread_id
        AND l.checkpoint_ns = w.checkpoint_ns AND l.checkpoint_id = w.checkpoint_id))
"""


def finished_before(
    db: Database, *, days: int, quiet_minutes: int, per_batch: int
) -> AsyncIterator[list[str]]:
    """Batches of finished runs' thread ids whose incident last changed more than `days`
    days ago (and at least `quiet_minutes` ago)."""
    return _finished(db, f"i.updated_at < {cutoff()}", "", {"days": days}, quiet_minutes, per_batch)


def finished_with_history(
    db: Database, *, younger_than_days: int | None, quiet_minutes: int, per_batch: int
) -> AsyncIterator[list[str]]:
    """Batches of finished runs' thread ids holding more than their latest checkpoint, whose
    incident changed within `younger_than_days` days (any time when None) but at least
    `quiet_minutes` ago."""
    if younger_than_days is None:
        return _finished(db, "true", _SUPERSEDED, {}, quiet_minutes, per_batch)
    age = f"i.updated_at >= {cutoff()}"
    return _finished(db, age, _SUPERSEDED, {"days": younger_than_days}, quiet_minutes, per_batch)


async def _finished(
    db: Database, age: str, more: str, params: dict[str, Any], quiet: int, per_batch: int
) -> AsyncIterator[list[str]]:
    query = text(_FINISHED.format(closed=_CLOSED_SQL, age=age, more=more))
    after = 0
    while True:
        bounds = {"after": after, "limit": per_batch, "quiet": quiet}
        async with db.session() as session:
            rows = (await session.execute(query, {**params, **bounds})).all()
        if not rows:
            return
        after = int(rows[-1][0])
        yield [str(row[1]) for row in rows]


async def thread_rows(db: Database, threads: Sequence[str]) -> dict[str, int]:
    """The rows of each checkpoint table the threads hold (what deleting them frees)."""
    return await _tally(db, _ALL_ROWS, threads)


async def superseded_rows(db: Database, threads: Sequence[str]) -> dict[str, int]:
    """The rows of each checkpoint table pruning the threads to their latest checkpoint
    frees."""
    return await _tally(db, _UNKEPT_ROWS, threads)


async def _tally(db: Database, query: str, threads: Sequence[str]) -> dict[str, int]:
    async with db.session() as session:
        counts = (await session.execute(text(query), {"threads": list(threads)})).one()
    return {table: int(count) for table, count in zip(TABLES, counts, strict=True)}


async def try_setup_lock(conn: AsyncConnection[Any]) -> bool:
    """Take the checkpoint-setup advisory lock on `conn` (a session lock) if it is free."""
    cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtext('larkops:checkpointer'))")
    row = await cursor.fetchone()
    return row is not None and bool(row[0])


async def migrations_applied(conn: AsyncConnection[DictRow]) -> int:
    """How many of the saver's own migrations `checkpoint_migrations` records."""
    cursor = await conn.execute("SELECT count(*) AS n FROM checkpoint_migrations")
    row = await cursor.fetchone()
    return 0 if row is None else int(row["n"])
