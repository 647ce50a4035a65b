"""Part 3 of bench/incidents.py: resume latency with 10 vs many paused runs, in process.

Claim + `RunManager.resume` to the next gate, timed on a fresh run, with 10 other runs paused
and with `paused` others (two databases on one embedded server, fsync off, VACUUM ANALYZE
first, samples alternated so drift hits both). A scripted advisor answers at once, so the
figures are the workflow machinery's own. Run by itself, `python bench/incident_resume.py DSN N`
makes N paused runs in DSN (the parent starts one such process per core).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from figures import figure
from sqlalchemy import text

from storage import approvals
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade
from workflows.checkpoint import open_checkpointer
from workflows.incident_graph import GatePolicy, GraphDeps, gate_token
from workflows.runs import RunManager

NEW_INCIDENTS = (
    "INSERT INTO incidents (fingerprint, title, chat_id, labels) SELECT "
    "substr(md5(random()::text), 1, 16), 'HighLatency', 'oc_ops', "
    """'{"alertname": "HighLatency"}' FROM generate_series(1, :n) RETURNING id, run_id"""
)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Scripted:
    """The advisor port with fixed answers: a diagnosis, a proposal, policy 'approve'."""

    async def diagnose(self, alert: Any, *, incident_id: int, run_id: str) -> dict[str, Any]:
        return {"summary": "disk full", "hypotheses": [["disk full", 0.8]], "provider": "rules"}

    async def propose(
        self, alert: Any, diagnosis: Any, *, incident_id: int | None = None, run_id: Any = None
    ) -> dict[str, Any]:
        return {"plugin": "command", "params": {"template": "restart"}, "rationale": "helps"}

    async def evaluate(self, proposal: Any, alert: Any) -> dict[str, Any]:
        return {"kind": "approve", "risk": "medium", "required_approvals": 1, "reason": "ok"}

    async def execute(
        self, proposal: Any, *, incident_id: int, run_id: str, dry_run: bool = False
    ) -> dict[str, Any]:
        return {"ok": True, "summary": "restarted"}

    async def verify(self, alert: Any, proposal: Any, execution: Any) -> dict[str, Any]:
        return {"ok": True, "summary": "healthy"}

    async def remember(self, incident_id: int) -> None:
        return None

    async def show(self, incident_id: int) -> None:  # the presenter port, silent
        return None

    async def escalate(self, incident_id: int, reason: str) -> None:
        return None


@contextlib.asynccontextmanager
async def manager(dsn: str) -> AsyncIterator[tuple[Database, RunManager]]:
    db = await Database.open(dsn)
    try:
        async with open_checkpointer(dsn) as saver:
            deps = GraphDeps(db, Scripted(), Scripted(), GatePolicy(approvers=("ou_bob",)))
            yield db, RunManager(deps, saver, MemoryCoordination())
    finally:
        await db.close()


async def paused_runs(dsn: str, count: int, chunk: int = 50, progress: bool = False) -> None:
    """Create `count` incidents (one alert each) and run each to its diagnosis gate."""
    async with manager(dsn) as (db, runs):
        async with db.engine.begin() as conn:
            made = (await conn.execute(text(NEW_INCIDENTS), {"n": count})).all()
            await conn.execute(
                text(
                    "INSERT INTO alerts (incident_id, source, fingerprint, title, annotations) "
                    """SELECT id, 'generic', fingerprint, title, '{"url": "http://x"}' """
                    "FROM incidents WHERE id = ANY(:ids)"
                ),
                {"ids": [i for i, _ in made]},
            )
        for n in range(0, len(made), chunk):
            await asyncio.gather(*(runs.run_now(i, str(r)) for i, r in made[n : n + chunk]))
            if progress and (n // chunk) % 10 == 9:
                print(n + chunk, flush=True)


async def one_resume(db: Database, runs: RunManager) -> tuple[float, float]:
    """(claim ms, resume ms) of a fresh run at its diagnosis gate; the run is ended after."""
    async with db.engine.begin() as conn:
        incident, run_id = (await conn.execute(text(NEW_INCIDENTS), {"n": 1})).one()
    run = str(run_id)
    await runs.run_now(incident, run)
    token, decision = gate_token(run, "diagnosis"), {"decision": "approve", "by": ["ou_bob"]}
    t0 = time.perf_counter()
    await approvals.claim(db, run, "diagnosis", token, "ou_bob", "approve")
    t1 = time.perf_counter()
    await runs.resume(run, token, decision)
    t2 = time.perf_counter()
    token = gate_token(run, "proposal")  # end the run so the paused count stays put
    await approvals.claim(db, run, "proposal", token, "ou_bob", "reject")
    await runs.resume(run, token, {"decision": "reject", "by": ["ou_bob"]})
    return (t1 - t0) * 1000, (t2 - t1) * 1000


async def resume_part(paused: int, samples: int, workers: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-resume-"))
    server = EmbeddedPostgres(home, fsync=False)
    server.start()
    admin = server.dsn.rsplit("/", 1)[0]
    small, big = f"{admin}/paused_small", f"{admin}/paused_big"
    try:
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            for dsn in (small, big):
                conn.execute(f"CREATE DATABASE {dsn.rsplit('/', 1)[1]}")
        for dsn in (small, big):
            db = await Database.open(dsn)
            await upgrade(db)
            await db.close()
            await paused_runs(dsn, 10)
        started, share = time.monotonic(), (paused - 10) // workers
        print(f"resume: making {paused - 10} more paused runs with {workers} processes ...")
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                big,
                str(share + (n == 0) * ((paused - 10) % workers)),
                stdout=asyncio.subprocess.PIPE,
            )
            for n in range(workers)
        ]
        done = Counter[int]()

        async def relay(n: int, proc: asyncio.subprocess.Process) -> None:
            assert proc.stdout is not None
            async for line in proc.stdout:
                done[n] = int(line)
                print(
                    f"  {sum(done.values()) + 10} paused, {time.monotonic() - started:.0f} s",
                    flush=True,
                )
            await proc.wait()

        await asyncio.gather(*(relay(n, p) for n, p in enumerate(procs)))
        figures: dict[str, list[tuple[float, float]]] = {small: [], big: []}
        async with manager(small) as one, manager(big) as other:
            for dsn in (small, big):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    pending = "SELECT count(*) FROM approvals WHERE status = 'pending'"
                    print(f"  {dsn}: {conn.execute(pending).fetchall()[0][0]} runs paused")
                    conn.execute("VACUUM ANALYZE")
            for _ in range(samples):  # alternate, so drift (autovacuum, caches) hits both
                figures[small].append(await one_resume(*one))
                figures[big].append(await one_resume(*other))
    finally:
        server.release()
        shutil.rmtree(home, ignore_errors=True)
    print(
        f"resume one run (claim + RunManager.resume to the next gate), {samples} each, alternated:"
    )
    totals = {}
    for dsn, label in ((small, "10"), (big, str(paused))):
        claim, resume = zip(*figures[dsn], strict=True)
        totals[dsn] = med([a + b for a, b in figures[dsn]])
        print(
            f"  {label:>6} paused: median {totals[dsn]:.1f} ms (claim {med(list(claim)):.1f} "
            f"+ resume "
            f"{med(list(resume)):.1f}; resume p90 {pct(list(resume), 0.9):.1f})"
        )
    ratio = totals[big] / totals[small]
    print(f"  ratio {ratio:.2f} (goal <= 1.2)")
    figure(4, "resume median, 10 paused runs", totals[small], "ms", "", None)
    figure(4, f"resume median, {paused} paused runs", totals[big], "ms", "", None)
    figure(4, f"resume latency ratio, {paused} vs 10 paused", ratio, "x", "<= 1.2", ratio <= 1.2)


if __name__ == "__main__":
    asyncio.run(paused_runs(sys.argv[1], int(sys.argv[2]), progress=True))
