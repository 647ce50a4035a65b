"""The council in the chat, through the emulator: an alert diagnosed by two models (an
OpenAI-compatible fake and an Anthropic fake, the real SDKs) with no main model configured, and
`/ask` putting a question to the council; without a council, `/ask` says how to get one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.lark.events import card_text
from tests.lark.test_incidents import APPROVE, card_with, fire, settings_for
from tests.lark.testbot import TestBot
from tests.support.fake_llm import FakeLLM, FakeTurn, fake_llm
from tests.support.health import health_service


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeLLM, FakeLLM]]:
    async with fake_llm() as gpt, fake_llm() as claude:
        yield gpt, claude


def with_council(state: Path, gpt: FakeLLM, claude: FakeLLM) -> dict[str, Any]:
    return settings_for(
        state,
        OPENAI_API_KEY="sk-test-0123456789",
        ANTHROPIC_API_KEY="sk-ant-test-0123456789",
        llm={
            "retries": 1,
            "council": [
                {
                    "name": "gpt",
                    "provider": "openai",
                    "model": "gpt-test",
                    "base_url": f"{gpt.base_url}/v1",
                },
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-test",
                    "base_url": claude.base_url,
                },
            ],
        },
    )


def answer(summary: str, cause: str, confidence: float) -> FakeTurn:
    body = {
        "summary": summary,
        "hypotheses": [{"cause": cause, "confidence": confidence}],
        "evidence": [],
        "next_checks": [],
    }
    return FakeTurn(text=json.dumps(body, ensure_ascii=False), input_tokens=300, output_tokens=60)


async def test_an_alert_is_diagnosed_by_the_council_and_the_card_folds_each_model(
    make_testbot: Any, health: tuple[str, Path], fakes: tuple[FakeLLM, FakeLLM]
) -> None:
    url, state = health
    gpt, claude = fakes
    gpt.script(answer("web 进程已退出，健康检查返回 503", "web 进程已退出", 0.8))
    claude.script(answer("web 进程退出了", "web 进程已退出", 0.6))
    bot: TestBot = await make_testbot(settings=with_council(state, gpt, claude), incidents=True)

    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, "2/2 个模型作答，一致度 100%", APPROVE)

    shown = card_text(diagnosed.card)
    assert "web 进程已退出（70%）— 支持：gpt、claude" in shown
    assert "作答的模型意见一致" in shown
    assert "gpt（gpt-test）：已作答" in shown
    assert "claude（claude-test）：已作答" in shown
    assert "sk-test-0123456789" not in json.dumps([r.body for r in gpt.requests])
    rows = await bot.rows("SELECT member, status FROM council_tasks ORDER BY id")
    assert [tuple(r) for r in rows] == [("gpt", "answered"), ("claude", "answered")]


async def test_ask_puts_a_question_to_the_council(
    make_testbot: Any, tmp_path: Path, fakes: tuple[FakeLLM, FakeLLM]
) -> None:
    gpt, claude = fakes
    gpt.script(answer("db-1 的磁盘 IO 很高", "磁盘 IO 饱和", 0.7))
    claude.script(answer("慢查询太多", "慢查询", 0.6))
    bot: TestBot = await make_testbot(settings=with_council(tmp_path, gpt, claude))

    await bot.send("/ask gpt,claude 为什么 db-1 很慢", user="ou_bob")
    asking = await bot.expect_reply("正在同时询问 gpt、claude")

    def answered(message: Any) -> bool:
        return message.message_id == asking.message_id and "已作答" in card_text(message.card)

    done = await bot.emulator.wait_for_bot_message("oc_ops", answered, 15)
    shown = card_text(done.card)
    assert "2/2 个模型作答，一致度 50%" in shown
    assert "模型之间有 2 处分歧" in shown
    assert "磁盘 IO 饱和（35%）— 支持：gpt；不认同：claude" in shown
    assert "为什么 db-1 很慢" in json.dumps(gpt.requests[0].body, ensure_ascii=False)

    await bot.send("/ask gpt,llama 为什么", user="ou_bob")
    await bot.expect_reply("没有名为 llama 的模型。可选：gpt, claude")


async def test_ask_without_a_council_says_how_to_get_one(make_testbot: Any, tmp_path: Path) -> None:
    bot: TestBot = await make_testbot(settings=settings_for(tmp_path))
    await bot.send("/ask 为什么 db-1 很慢", user="ou_bob")
    await bot.expect_reply("没有配置模型会审")
