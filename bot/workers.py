"""Intake processes: `larkops run --workers N` puts more than one core to work in an alert storm.

One Python process is one core. With `--workers N` (default: the cores it may use, a
container's CPU limit counted, at most `MOST`) the main process starts N - 1 intake processes
once its database is migrated: each is a replica of the bot on this machine (see
`docs/architecture.md`, Replicas) that

- takes requests on the same HTTP port (each process binds it with `SO_REUSEPORT`; the kernel
  spreads the connections over them), so webhook deliveries are parsed, committed to the inbox
  and answered 202 by whichever process got the connection;
- runs inbox workers, which claim pending deliveries with `FOR UPDATE SKIP LOCKED` (a delivery
  is triaged by one process, once: triage records it in its transaction) and the replica-safe
  loops (sweeps under leases, the scheduler's leader election);
- does not open the Lark long connection: the main process holds it (Lark events reach every
  process through the inbox), and the main process alone serves the sandbox.

Processes must share leases, dedupe windows and Lark's rate limits, so more than one needs the
Redis coordination backend (`REDIS_URL`); without it, or in the sandbox, `larkops run` stays one
process and says why. Intake processes use the main process's database (its embedded Postgres
too: `DATABASE_URL` is handed down). Each one watches a pipe from the main process and stops
when it closes (the main process stopped or died); one that exits on its own is started again
after a pause.

    intake = Intake(count=2, database_url=db.url, port=8080)
    await intake.start()        # after migrations
    ...
    await intake.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from bot.logs import get_logger

log = get_logger(__name__)

MOST = 4  # the default at most: beyond this Postgres, not Python, is the bottleneck
RESTART_PAUSE = (1.0, 30.0)  # seconds before starting a process that exited again: first, most
STOP_GRACE = 20.0  # seconds an intake process may take to finish what it holds
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


@dataclass(frozen=True)
class Plan:
    count: int
    reason: str | None = None  # why fewer processes than asked for


def plan(settings: Settings, asked: int | None, cores: int | None = None) -> Plan:
    """How many processes `larkops run --workers` runs (and why fewer than asked)."""
    count = asked if asked is not None else min(cores or usable_cores(), MOST)
    if count <= 1:
        return Plan(1)
    if not settings.lark_configured:
        return Plan(1, "sandbox")
    if settings.redis_url is None:
        return Plan(1, "no_redis")
    return Plan(count)


def usable_cores(quota: Path = CPU_MAX) -> int:
    """The cores this process may use: those it may run on, fewer under a cgroup CPU limit
    (a container's `cpus:` or a pod's `limits.cpu`, which `os.cpu_count()` does not see)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        limit, period = quota.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return cores
    if limit == "max":
        return cores
    with contextlib.suppress(ValueError, ZeroDivisionError):
        return max(1, min(cores, math.ceil(int(limit) / int(period))))
    return cores


class Intake:
    """The main process's intake processes: started, kept running, stopped."""

    def __init__(self, count: int, *, database_url: str, port: int) -> None:
        self.count = count
        self.database_url = database_url
        self.port = port
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[int, asyncio.subprocess.Process] = {}
        self._pipes: dict[int, int] = {}  # process number -> write end of its pipe
        self._stopping = False

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep(n), name=f"intake-{n}") for n in range(1, self.count)
        ]
        log.info("intake.started", processes=self.count)

    async def _keep(self, number: int) -> None:
        pause = RESTART_PAUSE[0]
        while not self._stopping:
            process = await self._spawn(number)
            code = await process.wait()
            self._close_pipe(number)
            if self._stopping:
                return
            log.warning("intake.exited", process=number, code=code, restart_in=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_PAUSE[1])

    async def _spawn(self, number: int) -> asyncio.subprocess.Process:
        read, write = os.pipe()
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "LARKOPS_HTTP_PORT": str(self.port),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "run",
                "--intake-of",
                str(read),
                env=env,
                pass_fds=(read,),
            )
        finally:
            os.close(read)
        self._pipes[number] = write
        self._running[number] = process
        return process

    def _close_pipe(self, number: int) -> None:
        write = self._pipes.pop(number, None)
        if write is not None:
            with contextlib.suppress(OSError):
                os.close(write)

    async def stop(self) -> None:
        """Close every pipe (each process stops cleanly), then wait; kill a straggler."""
        self._stopping = True
        for number in list(self._pipes):
            self._close_pipe(number)
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=STOP_GRACE)
            for task in late:
                process = self._running.get(int((task.get_name() or "-0").split("-")[-1]))
                if process is not None and process.returncode is None:
                    log.warning("intake.killed", pid=process.pid)
                    process.kill()
            # a killed process's watcher ends with it; waited for so, a cancellation of this
            # stop is never taken for a watcher's (as awaiting each one under suppress was)
            await asyncio.wait(self._tasks)
            for task in self._tasks:
                error = None if task.cancelled() else task.exception()
                if error is not None and not isinstance(error, ProcessLookupError):
                    log.error("intake.watch_failed", task=task.get_name(), exc_info=error)


def watch_parent(fd: int, stop: asyncio.Event) -> None:
    """An intake process stops when the main process's pipe closes (it stopped or died)."""
    loop = asyncio.get_running_loop()

    def closed() -> None:
        with contextlib.suppress(OSError):
            if os.read(fd, 1):
                return  # nothing is ever written; only the end counts
        loop.remove_reader(fd)
        stop.set()

    loop.add_reader(fd, closed)
