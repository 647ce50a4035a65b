"""Jobs that remember, through the emulator with real plugins and Postgres (pgvector): a job
that keeps failing says which failure in a row it is and what it found before, recovers and says
so, another job's failure cites the similar past failure and when it recovered, and `/job` shows
the trend of the latest runs. No model is configured: retrieval and trend need none."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.lark.events import card_text
from storage import schedules
from storage.models import Schedule
from tests.lark.testbot import TestBot
from tests.support.fake_llm import FakeTurn, fake_llm
from workflows.schedule.spec import Once


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    """A real TCP port that accepts connections."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def job(bot: TestBot, task: str, port: int) -> int:
    action = {
        "type": "checks",
        "retries": 0,
        "steps": [{"plugin": "tcp_check", "params": {"host": "127.0.0.1", "port": port}}],
    }
    later = datetime.now(UTC) + timedelta(days=300)
    row = await schedules.create(
        bot.db,
        chat_id="oc_ops",
        created_by="ou_alice",
        source_text=task,
        task=task,
        timezone="Asia/Shanghai",
        kind="once",
        spec=Once(later, "Asia/Shanghai").to_json(),
        cron=None,
        run_at=later,
        action=action,
        next_run_at=later,
    )
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE schedules SET status = 'active' WHERE id = :i"), {"i": row.id}
        )
    return row.id


async def fire(bot: TestBot, schedule_id: int, when: datetime) -> str:
    """The scheduler fires the job at `when` (the elected leader's path, without its clock);
    the text of the run's card."""
    assert bot.runtime.scheduling is not None
    async with bot.db.session() as session:
        row = await session.get(Schedule, schedule_id)
    assert row is not None
    run = await schedules.claim_run(bot.db, schedule_id, when, replica="test")
    assert run is not None
    await bot.runtime.scheduling.runner.run(row, run, False)
    card = await bot.expect_reply(f"定时任务 #{schedule_id}")
    return card_text(card.card)


def local(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo("Asia/Shanghai"))


def day_of(moment: datetime, seen_at: datetime) -> str:
    """How a card shown at `seen_at` names the day of `moment` (a minute later may be past
    midnight in Shanghai)."""
    return "今天" if local(moment).date() == local(seen_at).date() else "昨天"


async def test_a_job_remembers_its_failures_its_recovery_and_shows_its_trend(
    make_testbot: Any, listener: int
) -> None:
    bot: TestBot = await make_testbot()
    port = closed_port()
    first = await job(bot, "检查 db-2 的数据库端口", port)
    now = datetime.now(UTC).replace(microsecond=0)
    week_ago, yesterday = now - timedelta(days=7), now - timedelta(days=1)

    shown = await fire(bot, first, week_ago)
    assert "连续失败" not in shown
    assert "也出现过" not in shown
    assert "connection refused" in shown  # the rules' analysis
    assert f"❌ `tcp_check`：`127.0.0.1:{port}` 无法连接：" in shown  # the check, in Chinese

    shown = await fire(bot, first, yesterday)
    assert "第2次连续失败" in shown
    assert "相似的历史失败" in shown  # the analysis cites the failure before
    assert "connection refused (nothing listens on that port) — 之后未见恢复" in shown

    shown = await fire(bot, first, now)
    assert "第3次连续失败" in shown
    weekday = "一二三四五六日"[local(week_ago).weekday()]
    assert f"上周{weekday} {local(week_ago):%H:%M}（相似度" in shown
    assert f"昨天 {local(yesterday):%H:%M}（相似度" in shown

    async with bot.db.engine.begin() as conn:
        fixed = {
            "type": "checks",
            "retries": 0,
            "steps": [{"plugin": "tcp_check", "params": {"host": "127.0.0.1", "port": listener}}],
        }
        await conn.execute(
            text("UPDATE schedules SET action = CAST(:a AS jsonb) WHERE id = :i"),
            {"a": json.dumps(fixed), "i": first},
        )
    recovered = now + timedelta(minutes=1)
    shown = await fire(bot, first, recovered)
    assert "此前连续失败 3 次，本次已恢复" in shown
    assert f"✅ `tcp_check`：`127.0.0.1:{listener}` 可以连接" in shown
    day = day_of(now, recovered)
    assert f"{day} {local(now):%H:%M} 127.0.0.1, db-2 也出现过：tcp_check" in shown

    # another job fails the same way: its analysis cites the first job's failures and recovery
    second = await job(bot, "每小时检查 db-2 端口", port)
    later = now + timedelta(minutes=2)
    shown = await fire(bot, second, later)
    assert "相似的历史失败" in shown
    assert f"{day_of(recovered, later)} {local(recovered):%H:%M} 已恢复" in shown

    await bot.send(f"/job {first}")
    card = await bot.expect_reply("趋势")
    shown = card_text(card.card)
    assert "（最近 4 次）：❌❌❌✅　成功率 25%" in shown
    assert "用时：" in shown
    remembered = await bot.rows(
        "SELECT source_id, metadata->>'ok' FROM knowledge WHERE kind = 'job_run' ORDER BY id"
    )
    assert [tuple(r) for r in remembered] == [
        ("1:1", "false"),
        ("1:2", "false"),
        ("1:3", "false"),
        ("1:4", "true"),
        ("2:5", "false"),
    ]


async def test_a_model_words_the_history_and_its_garbage_is_left_out(make_testbot: Any) -> None:
    async with fake_llm() as fake:
        settings = {
            "LLM_PROVIDER": "openai",
            "LLM_MODEL": "gpt-test",
            "OPENAI_API_KEY": "sk-test-0123456789",
            "OPENAI_BASE_URL": f"{fake.base_url}/v1",
            "llm": {"retries": 1},
        }
        bot: TestBot = await make_testbot(settings=settings, incidents=True)
        port = closed_port()
        first = await job(bot, "检查 db-2 的数据库端口", port)
        now = datetime.now(UTC).replace(microsecond=0)
        shown = await fire(bot, first, now - timedelta(days=1))
        assert fake.requests == []  # nothing to word without a history

        fake.script(FakeTurn(text="db-2 的端口从昨天起连续两次无法连接，之前没有恢复过。"))
        shown = await fire(bot, first, now)
        assert "db-2 的端口从昨天起连续两次无法连接" in shown
        assert "第2次连续失败" in shown  # the facts stay beside the words
        sent = json.dumps(fake.requests[0].body, ensure_ascii=False)
        assert '<data kind=\\"job_history\\">' in sent  # the facts go fenced, as data
        assert "sk-test-0123456789" not in sent

        fake.script(FakeTurn(text="```rm -rf /``` see https://evil.example"))
        shown = await fire(bot, first, now + timedelta(minutes=1))
        assert "evil.example" not in shown
        assert "第3次连续失败" in shown
