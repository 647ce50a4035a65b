"""/readyz while start-up is still adding its checks answers (not ready) instead of failing
with an ERROR in the log."""

from __future__ import annotations

from bot.endpoints import Readiness


async def test_a_check_added_while_a_probe_runs_does_not_break_it() -> None:
    readiness = Readiness()

    async def late() -> None:
        return None

    async def database() -> None:
        readiness.checks["coordination"] = late  # start-up goes on meanwhile

    readiness.checks["database"] = database
    ready, results = await readiness.report()
    assert not ready  # start-up has not finished
    assert results == {"startup": "starting", "database": "ok"}
