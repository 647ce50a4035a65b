"""An alert diagnosed by a model (the scripted OpenAI-compatible fake, the real SDK), through the
emulator, the real workflow, plugins, policy and Postgres — and the same alert with the model
down, where the rules diagnosis answers and the card says why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.lark.events import card_text
from tests.lark.test_incidents import APPROVE, _is, card_with, fire, settings_for
from tests.lark.testbot import TestBot, wait_until
from tests.support.fake_llm import FakeFailure, FakeLLM, FakeTurn, fake_llm
from tests.support.health import health_service


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as server:
        yield server


def with_model(state: Path, fake: FakeLLM, **llm: Any) -> dict[str, Any]:
    return settings_for(
        state,
        LLM_PROVIDER="openai",
        LLM_MODEL="gpt-test",
        OPENAI_API_KEY="sk-test-0123456789",
        OPENAI_BASE_URL=f"{fake.base_url}/v1",
        llm={"retries": 2, **llm},
    )


async def test_model_diagnoses_with_tools_then_the_runbook_fixes(
    make_testbot: Any, health: tuple[str, Path], fake: FakeLLM
) -> None:
    url, state = health
    fake.script(
        FakeTurn(tool_calls=[("http_check", {"url": url})], input_tokens=300, output_tokens=40),
        FakeTurn(
            text=json.dumps(
                {
                    "summary": "Web 健康检查返回 503，服务进程可能已退出",
                    "hypotheses": [{"cause": "web 进程已退出", "confidence": 0.8}],
                    "evidence": [{"tool_call_id": "call_0001", "text": "健康接口返回 503"}],
                    "next_checks": ["查看 web 的日志"],
                }
            ),
            input_tokens=500,
            output_tokens=120,
        ),
    )
    bot: TestBot = await make_testbot(settings=with_model(state, fake), incidents=True)
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, "服务进程可能已退出", APPROVE)
    shown = card_text(diagnosed.card)
    assert "openai:gpt-test" in shown
    assert "健康接口返回 503" in shown
    await bot.click(diagnosed, APPROVE, user="ou_bob")
    proposed = await card_with(bot, card, "restart_web", APPROVE)
    await bot.click(proposed, APPROVE, user="ou_carol")
    await wait_until(lambda: _is(bot, "resolved"), timeout=20, what="resolution")
    turns = await bot.rows(
        "SELECT purpose, prompt_tokens, completion_tokens FROM llm_turns ORDER BY id"
    )
    assert turns == [("diagnosis", 300, 40), ("diagnosis", 500, 120)]
    sent = json.dumps([r.body for r in fake.requests], ensure_ascii=False)
    assert "sk-test-0123456789" not in sent


async def test_a_dead_model_never_holds_up_the_incident(
    make_testbot: Any, health: tuple[str, Path], fake: FakeLLM
) -> None:
    url, state = health
    fake.script(FakeFailure(500), FakeFailure(503))
    bot: TestBot = await make_testbot(settings=with_model(state, fake), incidents=True)
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, "http_check", APPROVE, timeout=30)
    shown = card_text(diagnosed.card)
    assert "rules" in shown  # the runbook's diagnosis
    assert "model failed" in shown  # and the card says why the model's is missing
    assert len(fake.requests) == 2
