"""The chat agent's loop against the scripted fake model (OpenAI and Anthropic APIs, the real
SDKs, streamed), the real guard and Postgres: tool rounds, the step cap, retries before any
text, budgets, bad arguments, and a model that is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import BaseModel, ConfigDict, Field

from storage.coordination import MemoryCoordination
from storage.database import Database
from tests.support.fake_llm import FakeFailure, FakeLLM, FakeTurn, fake_llm
from workflows.chat.agent import ChatAgent, ToolOutcome
from workflows.llm.anthropic_chat import AnthropicChat
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.model import ChatModel, ToolCall, ToolSpec
from workflows.llm.openai_chat import OpenAIChat


class Count(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hours: int = Field(ge=1, le=48)


@dataclass
class Box:
    """A toolbox with one read-only tool that validates its arguments like the real one."""

    calls: list[dict[str, object]] = field(default_factory=list)

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec("count_alerts", "Alerts in a window", Count.model_json_schema())]

    async def call(self, call: ToolCall) -> ToolOutcome:
        try:
            params = Count.model_validate(dict(call.arguments or {}))
        except ValueError:
            return ToolOutcome("invalid arguments", "invalid arguments", ok=False)
        self.calls.append(params.model_dump())
        return ToolOutcome(f"{params.hours * 2} alerts", f"{params.hours * 2} alerts")


@dataclass
class Shown:
    texts: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)

    def text(self, delta: str) -> None:
        self.texts.append(delta)

    def tool(self, name: str) -> None:
        self.tools.append(name)


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as server:
        yield server


def model_for(fake: FakeLLM, api: str) -> ChatModel:
    if api == "openai":
        return OpenAIChat("sk-test-key-123456", "gpt-test", base_url=f"{fake.base_url}/v1")
    return AnthropicChat("sk-ant-test-123456", "claude-test", base_url=fake.base_url)


def agent(db: Database, fake: FakeLLM, api: str = "openai", **config: object) -> ChatAgent:
    settings = {"retries": 2, **config}
    guard = ModelGuard(model_for(fake, api), db, MemoryCoordination(), LlmConfig(**settings))
    return ChatAgent(guard, language="en", zone="Asia/Shanghai")


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_tool_round_then_streamed_answer(
    migrated_db: Database, fake: FakeLLM, api: str
) -> None:
    fake.script(
        FakeTurn(tool_calls=[("count_alerts", {"hours": 3})]),
        FakeTurn(text="There were 6 alerts in the last 3 hours."),
    )
    box, shown = Box(), Shown()
    outcome = await agent(migrated_db, fake, api).answer(
        [], "how many alerts?", box, shown, conversation_id="c1"
    )
    assert outcome.answer == "There were 6 alerts in the last 3 hours."
    assert len(shown.texts) > 1  # it came in pieces
    assert "".join(shown.texts) == outcome.answer
    assert shown.tools == ["count_alerts"]
    assert box.calls == [{"hours": 3}]
    assert [m.role for m in outcome.messages] == ["user", "assistant", "tool", "assistant"]
    assert not outcome.degraded


async def test_step_cap_asks_once_more_without_tools(migrated_db: Database, fake: FakeLLM) -> None:
    fake.script(
        FakeTurn(tool_calls=[("count_alerts", {"hours": 1})]),
        FakeTurn(tool_calls=[("count_alerts", {"hours": 99})]),  # invalid: refused, not run
        FakeTurn(text="2 alerts in the last hour."),
    )
    box = Box()
    outcome = await agent(migrated_db, fake, max_steps=2).answer(
        [], "alerts?", box, Shown(), conversation_id="c2"
    )
    assert outcome.code == "steps"
    assert outcome.answer == "2 alerts in the last hour."
    assert box.calls == [{"hours": 1}]
    assert "tools" not in fake.requests[-1].body  # the last call offers no tools
    assert [c.ok for c in outcome.calls] == [True, False]


async def test_retry_before_any_text_then_budget(migrated_db: Database, fake: FakeLLM) -> None:
    fake.script(FakeFailure(503), FakeTurn(text="ok", input_tokens=1500, output_tokens=10))
    talk = agent(migrated_db, fake, conversation_tokens=1000)
    first = await talk.answer([], "hi", Box(), Shown(), conversation_id="c3")
    assert first.answer == "ok"
    assert len(fake.requests) == 2
    second = await talk.answer([], "again", Box(), Shown(), conversation_id="c3")
    assert second.code == "budget_conversation"
    assert second.answer == ""
    assert len(fake.requests) == 2  # no call over the budget
    other = await talk.answer([], "new thread", Box(), Shown(), conversation_id="c4")
    assert other.code == ""  # the budget is per conversation
    assert other.answer


async def test_dead_model_is_a_clear_outcome(migrated_db: Database, fake: FakeLLM) -> None:
    fake.script(FakeFailure(500), FakeFailure(500))
    outcome = await agent(migrated_db, fake).answer(
        [], "status?", Box(), Shown(), conversation_id="c5"
    )
    assert outcome.code == "error"
    assert "500" in outcome.degraded or "failed" in outcome.degraded
    assert outcome.answer == ""
