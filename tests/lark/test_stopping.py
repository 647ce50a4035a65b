"""A stop (Ctrl-C, a rolling restart) at any moment of the bot's start-up ends: it logs no
ERROR and leaves none of the bot's tasks running."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import World
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tuple(str(ROOT / name) for name in ("bot", "workflows", "plugins", "storage"))


def _ours(task: asyncio.Task[Any]) -> bool:
    """Whether `task` runs the bot's code (not the test's, the emulator's or pytest's)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_filename.startswith(PACKAGES)


async def test_a_stop_at_any_database_call_of_the_start_up_ends_quietly(
    make_testbot: Any, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot is stopped as its n-th database call of the start-up takes a connection, and
    as it hands it back, for every n: the start-up's own steps, the scheduler's take-over
    (sync, catch-up, recovery), the inbox workers' first claims. Each stop returns, logs no
    ERROR (the pool's close of a surplus connection did: "Exception closing connection", and
    tests/lark/test_commands.py::test_stopping_logs_no_error failed so in CI) and leaves no
    task of the bot running."""
    pool = world.db.engine.sync_engine.pool
    counts = {"checkout": 0, "checkin": 0}
    moment: list[tuple[str, int]] = []  # stop at the n-th call of this kind
    stopping: list[asyncio.Task[None]] = []
    runtime: list[Any] = []

    def listen(kind: str) -> Any:
        def counted(*_: object) -> None:
            counts[kind] += 1
            if runtime and not stopping and moment == [(kind, counts[kind])]:
                stopping.append(asyncio.get_running_loop().create_task(runtime[0].stop()))

        event.listen(pool, kind, counted)
        return counted

    listeners = {kind: listen(kind) for kind in counts}
    before = set(asyncio.all_tasks())
    # how many calls a start-up makes: until the bot is ready and its pool idle
    first = await make_testbot()
    await wait_until(lambda: pool.checkedout() == 0, what="the start-up's calls done")
    startup = counts["checkout"]
    await first.runtime.stop()
    moments = [(kind, n) for n in range(1, startup + 1) for kind in counts]
    with caplog.at_level(logging.WARNING):
        for kind, n in moments:
            counts.update(checkout=0, checkin=0)
            moment[:] = [(kind, n)]
            stopping.clear()
            runtime.clear()
            bot = await make_testbot(wait_connected=False)
            runtime.append(bot.runtime)
            await wait_until(lambda: stopping, timeout=30, what=f"{kind} {n}")
            await stopping[0]
            closing = getattr(world.db.engine.dialect, "closing", set())  # the database's
            left = [t for t in asyncio.all_tasks() - before - closing if _ours(t) and not t.done()]
            assert left == [], (kind, n, left)
            loud = [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]
            assert loud == [], (kind, n, loud)
    for kind, counted in listeners.items():
        event.remove(pool, kind, counted)
    assert startup > 5
