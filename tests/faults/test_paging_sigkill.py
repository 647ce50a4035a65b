"""Paging survives a SIGKILL of `larkops run` between its levels: the steps are rows in Postgres,
the restarted bot fires the ones still due, each exactly once, and nobody touches the chat."""

from __future__ import annotations

from tests.faults.conftest import Stage
from tests.support.cluster import rows, running
from tests.support.repair import alert, bot_config
from tests.support.wait import wait_until

POLICY = {
    "oncall": {"schedules": {"primary": {"layers": [{"users": ["ou_bob"], "shift": "weekly"}]}}},
    "escalation": {
        "policies": {
            "default": [
                {"after": "0s", "notify": ["oncall:primary"], "via": ["chat"]},
                {"after": "20s", "notify": ["oncall:primary"], "via": ["urgent_app"]},
                {"after": "25s", "notify": ["ou_carol"], "via": ["urgent_app"]},
            ]
        }
    },
}


async def fired(dsn: str, steps: int) -> bool:
    done = await rows(dsn, "SELECT count(*) FROM pages WHERE status = 'done'")
    return bool(done[0][0] >= steps)


async def test_paging_goes_on_after_a_sigkill_between_levels(
    stage: Stage, fresh_db_url: str
) -> None:
    config = bot_config(stage.board.state, **POLICY)
    bot = stage.replica("bot", config, DATABASE_URL=fresh_db_url)
    async with running(bot):
        await bot.start(stage.emulator)
        assert (await bot.post(alert(stage.board, "web"))).status_code == 202
        await wait_until(lambda: fired(fresh_db_url, 1), 60, "level 1 (a chat mention)")
        await bot.kill()  # SIGKILL: levels 2 and 3 are still ahead
        assert stage.emulator.paging.urgents == []
        await bot.start(stage.emulator)
        await wait_until(lambda: fired(fresh_db_url, 3), 90, "levels 2 and 3 after the restart")
    steps = await rows(fresh_db_url, "SELECT step, status, attempts FROM pages ORDER BY step")
    assert steps == [(1, "done", 1), (2, "done", 1), (3, "done", 1)]
    notices = [(u.kind, u.open_ids) for u in stage.emulator.paging.urgents]
    assert notices == [("urgent_app", ("ou_bob",)), ("urgent_app", ("ou_carol",))]
