"""`storage.tasks.cancel`: ending background tasks never swallows the caller's cancellation,
and a task that fails instead of ending cancelled is logged, not raised into a shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
import structlog

from storage.tasks import cancel, finish
from tests.support.cancellation import cancel_at_every_turn

CLEANUP_TURNS = 5  # event-loop turns the background task takes to end once cancelled


async def _background(fail: bool = False) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        for _ in range(CLEANUP_TURNS):  # closes what it holds: a few awaits
            await asyncio.sleep(0)
        if fail:
            raise RuntimeError("cleanup failed")


async def test_a_caller_cancelled_while_it_ends_a_task_always_ends_cancelled() -> None:
    backgrounds: list[asyncio.Task[None]] = []

    async def begin() -> Coroutine[Any, Any, None]:
        backgrounds.append(asyncio.create_task(_background()))
        await asyncio.sleep(0)
        return cancel(backgrounds[-1])

    async def ended(_: int) -> None:
        await cancel(backgrounds[-1])  # (when the stop was cancelled before it began)
        assert backgrounds[-1].cancelled()

    sweep = await cancel_at_every_turn(begin, after=ended)
    assert sweep.lost == []
    assert sweep.turns >= CLEANUP_TURNS  # the sweep went through the task's clean-up


async def test_a_task_failing_as_it_ends_is_logged_not_raised() -> None:
    background = asyncio.create_task(_background(fail=True))
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        await cancel(background, None)
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("task.failed", "error")]
    with pytest.raises(RuntimeError):
        background.result()


async def test_a_stop_lets_work_finish_then_ends_what_overruns_its_patience() -> None:
    """A stop gives started work its patience: work that ends in time ends on its own (not
    cancelled); work still running after it is cancelled, said in a warning, and nothing is
    left running once the stop returns."""
    release = asyncio.Event()
    finished: list[str] = []

    async def work(name: str, done: asyncio.Event) -> None:
        await done.wait()
        finished.append(name)

    quick = asyncio.create_task(work("quick", release), name="quick")
    stuck = asyncio.create_task(work("stuck", asyncio.Event()), name="stuck")
    asyncio.get_running_loop().call_soon(release.set)
    with structlog.testing.capture_logs() as logs:
        await finish({quick, stuck}, 0.2, "card actions")
    assert finished == ["quick"]
    assert not quick.cancelled()
    assert stuck.cancelled()
    assert [(entry["event"], entry["what"], entry["tasks"]) for entry in logs] == [
        ("tasks.cancelled_at_stop", "card actions", ["stuck"])
    ]
