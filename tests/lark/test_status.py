"""/status in the chat: the bot's own health on a card, the same figures the chat agent's
`system_health` tool reads — through the emulator, with and without a model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.lark.events import card_text
from bot.lark.runtime import REPLICA
from cards.status import StatusView, status_card
from cards.texts import texts
from tests.lark.test_chat_agent import answered, with_model
from tests.lark.test_metrics import moved, scrape, value
from tests.lark.testbot import TestBot, wait_until
from tests.support.fake_llm import FakeLLM, FakeTurn, fake_llm
from tests.support.language import english


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as server:
        yield server


async def test_status_shows_connection_queue_leader_and_model(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"language": "en"})
    assert bot.runtime.scheduling is not None
    service = bot.runtime.scheduling.service
    await wait_until(lambda: service.is_leader, what="the scheduler to lead")
    await bot.send("/status")
    shown = card_text((await bot.expect_reply("larkops status")).card)
    for line in (
        "larkops status: all good",
        "Lark long connection: connected",
        "Inbox queue: 0 pending",
        "Messages waiting to be sent (Lark's rate limits): 0",
        "Database: ok",
        "Coordination (memory): ok",
        "Scheduler: this replica leads",
        "Model: none configured (rules only)",
        "Incidents: 0 active (0 escalated), 0 approvals waiting",
        f"Replica {REPLICA}",
    ):
        assert line in shown, (line, shown)
    # the chat agent's tool reads the same figures (once the /status row itself is done)
    await wait_until(
        lambda: _inbox_empty(bot), what="the inbox to be empty after /status was handled"
    )
    health = await bot.runtime.health()
    assert health["lark"] == "connected"
    assert health["scheduler"] == "here"
    assert health["scheduler_holder"] == REPLICA
    assert health["model_provider"] == "rules"
    assert health["tokens_today"] is None
    assert value(scrape(), "larkops_scheduler_leader") == 1
    assert "/status" in {spec.name for spec in bot.runtime.router.iter_commands()}


async def test_status_shows_the_model_budget_and_chat_answers_are_counted(
    make_testbot: Any, tmp_path: Path, fake: FakeLLM
) -> None:
    settings = with_model(tmp_path, fake, daily_tokens=1000)
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    before = scrape()
    await bot.send("/status")
    shown = card_text((await bot.expect_reply("larkops 状态")).card)
    assert "模型：openai:gpt-test，今日已用 0 / 1,000 tokens" in shown

    fake.script(FakeTurn(text="一切正常，没有进行中的事件。", input_tokens=900, output_tokens=300))
    await bot.send("服务器都健康吗？")
    await answered(bot, await bot.expect_reply(), "一切正常")
    await bot.send("/status")
    shown = card_text((await bot.expect_reply("larkops 状态")).card)
    assert "今日预算已用完（1,200 / 1,000 tokens）" in shown

    await bot.send("那磁盘呢？")  # a new question, over the day's budget: no call is made
    await answered(bot, await bot.expect_reply(), "额度已用完")
    assert len(fake.requests) == 1
    after = scrape()
    assert moved(before, after, "larkops_chat_answers_total", outcome="answered") == 1
    assert moved(before, after, "larkops_chat_answers_total", outcome="budget") == 1
    refused = {"provider": "openai", "reason": "budget_day"}
    assert moved(before, after, "larkops_llm_refusals_total", **refused) == 1
    # the first streamed text reached the card once, and was timed
    assert moved(before, after, "larkops_chat_first_text_seconds_count") == 1


async def _inbox_empty(bot: TestBot) -> bool:
    health = await bot.runtime.health()
    return bool(health["inbox_pending"] == 0 and health["inbox_oldest_seconds"] == 0)


def view(**changes: Any) -> StatusView:
    base: dict[str, Any] = {
        "lark": "connected",
        "inbox_pending": 0,
        "inbox_oldest_seconds": 0.0,
        "database": "ok",
        "coordination_backend": "redis",
        "coordination": "ok",
        "scheduler": "here",
        "scheduler_holder": "pod-a:1",
        "jobs_loaded": 3,
        "model_provider": "anthropic",
        "tokens_today": 1200,
        "daily_budget": 2_000_000,
        "incidents_active": 2,
        "gates_waiting": 1,
        "replica": "pod-a:1",
        "version": "0.1.0",
        "uptime_seconds": 3725.0,
    }
    return StatusView(**{**base, **changes})


def test_status_card_in_both_languages_and_when_something_is_wrong() -> None:
    zh = card_text(status_card(view(), texts("zh")))
    assert "larkops 状态：一切正常" in zh
    assert "已加载 3 个任务" in zh
    assert "模型：anthropic，今日已用 1,200 / 2,000,000 tokens" in zh
    assert "2 个进行中（0 个已升级），1 个审批等待中" in zh
    assert "已运行 1小时2分钟" in zh  # durations in words, not 1h 2m
    assert english(zh, ["larkops", "anthropic", "pod-a:1", "0.1.0", "redis"]) == []
    degraded = view(
        lark="error: <at id=all></at> refused",
        inbox_pending=7,
        inbox_oldest_seconds=125,
        database="OSError: [Errno 111] refused",
        scheduler="elsewhere",
        scheduler_holder="",
        tokens_today=None,
        daily_budget=None,
    )
    card = status_card(degraded, texts("en"))
    en = card_text(card)
    assert card["header"]["template"] == "red"
    assert "larkops status: needs attention" in en
    assert "Inbox queue: 7 pending, oldest waiting 2m 5s" in en
    assert "Incidents: 2 active (0 escalated), 1 approvals waiting" in en
    assert "Database: not ok (OSError: [Errno 111] refused)" in en
    assert "Scheduler: another replica leads (?)" in en
    assert "Model: none configured (rules only)" in en
    assert "<at id=all>" not in json.dumps(card)  # untrusted text cannot mention everyone
    assert "<at id=all></at> refused" in en  # yet reads as it was
    backlog_only = status_card(view(inbox_pending=3, inbox_oldest_seconds=90), texts("en"))
    assert backlog_only["header"]["template"] == "orange"


async def test_status_shows_the_messages_waiting_for_lark_until_they_are_sent(
    make_testbot: Any,
) -> None:
    """While Lark refuses the app for its rate (99991400), the bot's messages wait in order,
    and `/status` and the metrics say how many; once Lark takes them again they all arrive, in
    the order they were sent."""
    bot: TestBot = await make_testbot(settings={"language": "en"})
    api = bot.runtime.api
    bot.emulator.fail_next("/open-apis/im/v1/messages", status=429, code=99991400, seconds=120)
    sends = [
        asyncio.create_task(api.send_text(bot.chat, f"queued {n}", uuid=f"queued-{n}"))
        for n in range(8)
    ]
    try:
        await wait_until(lambda: api.outbox.backlog == 8, what="eight messages waiting")
        view = await bot.runtime.status()
        assert view.send_backlog == 8
        shown = card_text(status_card(view, texts("en")))
        assert "Messages waiting to be sent (Lark's rate limits): 8" in shown
        assert "等待发送的消息（飞书频率限制）：8 条" in card_text(status_card(view, texts("zh")))
        assert value(scrape(), "larkops_lark_send_backlog") >= 8  # this process's, all bots
        bot.emulator.guard.clear_faults()
        await asyncio.gather(*sends)
    finally:
        bot.emulator.guard.clear_faults()
        await asyncio.gather(*sends, return_exceptions=True)
    sent = [m.text for m in bot.emulator.transcript(bot.chat) if m.text.startswith("queued")]
    assert sent == [f"queued {n}" for n in range(8)]
    assert (await bot.runtime.status()).send_backlog == 0
