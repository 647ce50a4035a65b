"""The scheduled retention cleanup inside `larkops run`: one replica at a time.

Every replica looks once a minute (or every `interval_minutes`, when shorter) whether a pass is
due, by trying to take the `retention:cleanup` lease with a time to live of `interval_minutes`.
The replica that gets it runs one pass (`workflows.cleanup.clean`), renewing the lease while the
pass lasts, and then keeps it: nobody else runs a pass until it expires, so there is one pass
per interval whichever replicas are up. A pass that fails gives the lease back, so that another
replica (or this one, a minute later) tries again. The first look waits `first_delay` seconds so
that start-up and workflow recovery go first.

Metrics: `larkops_gc_deleted_total{table}` (rows deleted) and
`larkops_gc_last_run_timestamp_seconds` (when this replica last finished a pass).

Usage::

    janitor = Janitor(settings.retention, db, saver, coordination)
    janitor.start()
    ...
    await janitor.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from prometheus_client import Counter, Gauge

from bot.logs import get_logger
from storage.coordination import Coordination, Lease
from storage.database import Database
from storage.retention import RetentionConfig
from storage.tasks import cancel
from workflows.cleanup import CleanupReport, clean

log = get_logger(__name__)

LEASE = "retention:cleanup"
DELETED = Counter("larkops_gc_deleted_total", "Rows deleted by the retention cleanup", ["table"])
LAST_RUN = Gauge(
    "larkops_gc_last_run_timestamp_seconds",
    "Unix time this replica last finished a retention cleanup pass (0: never)",
)


class Janitor:
    def __init__(
        self,
        config: RetentionConfig,
        db: Database,
        checkpointer: BaseCheckpointSaver[Any] | None,
        coordination: Coordination,
        *,
        first_delay: float = 60.0,
        poll: float = 60.0,
    ) -> None:
        self.config = config
        self.db = db
        self.checkpointer = checkpointer
        self.coordination = coordination
        self.first_delay = first_delay
        self.ttl = config.interval_minutes * 60.0
        self.poll = min(poll, self.ttl)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def run_once(self) -> CleanupReport | None:
        """A pass when one is due here (the lease was free); None when another replica ran one
        within the interval."""
        lease = await self.coordination.acquire(LEASE, self.ttl)
        if lease is None:
            return None
        heartbeat = asyncio.create_task(self._renew(lease))
        try:
            report = await clean(self.db, self.checkpointer, self.config)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.coordination.release(lease)
            raise
        finally:
            await cancel(heartbeat)
        for table, rows in report.tables.items():
            DELETED.labels(table).inc(rows)
        LAST_RUN.set(time.time())
        log.info(
            "retention.cleaned",
            rows=report.total,
            tables={table: rows for table, rows in report.tables.items() if rows},
            runs_deleted=report.runs_deleted,
            runs_pruned=report.runs_pruned,
            seconds=round(report.seconds, 3),
        )
        return report

    async def _renew(self, lease: Lease) -> None:
        """Keep the lease while a long pass runs (a lost lease only means a second pass may
        start elsewhere: deleting twice is harmless)."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            with contextlib.suppress(Exception):
                await self.coordination.renew(lease, self.ttl)

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention.failed")
            await asyncio.sleep(self.poll)
