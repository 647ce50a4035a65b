"""`POST /api/v1/chat`: the chat agent's answer streamed as server-sent events, with the same
tools as in the chat (grounded in the asking chat's data) and its budgets; a change is a card
posted in the chat for people, never an action."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.lark.test_chat_agent import seed_incident, with_model
from tests.support.fake_llm import FakeLLM, FakeTurn, fake_llm


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as server:
        yield server


async def events(client: Any, body: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    async with client.stream("POST", "/chat", json=body) as answer:
        assert answer.status_code == 200, await answer.aread()
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name, json.loads(line[6:])))
    return found


async def test_the_answer_streams_with_the_chats_tools(
    make_api: Any, tmp_path: Path, fake: FakeLLM
) -> None:
    api: Api = await make_api(settings=with_model(tmp_path, fake), incidents=True)
    first = await seed_incident(api.bot, "checkout p99 延迟过高")
    await seed_incident(api.bot, "other chat's incident", chat_id="oc_elsewhere")
    fake.script(
        FakeTurn(tool_calls=[("list_incidents", {"status": "active"})]),
        FakeTurn(text=f"进行中：#{first} checkout p99 延迟过高。" * 3, pace=0.02),
    )
    client = await api.as_user("ou_alice")
    found = await events(client, {"question": "现在有哪些事件？", "chat_id": "oc_ops"})
    names = [name for name, _ in found]
    assert names[0] == "tool"
    assert names.count("delta") > 1  # streamed in pieces
    assert names[-1] == "done"
    done = found[-1][1]
    assert "checkout p99" in done["answer"]
    assert [t["name"] for t in done["tools"]] == ["list_incidents"]
    # grounded in the asking chat: the tool result names this chat's incident only
    second = json.dumps(fake.requests[1].body, ensure_ascii=False)
    assert "checkout p99" in second
    assert "other chat's incident" not in second
    tools = {t["function"]["name"] for t in fake.requests[0].body["tools"]}
    assert "command" not in tools  # a fix is never a tool
    asked = await api.bot.rows("SELECT actor FROM incident_events WHERE kind = 'api.chat.asked'")
    assert asked == [("ou_alice",)]


async def test_without_a_model_the_stream_says_which_commands_help(
    make_api: Any, tmp_path: Path
) -> None:
    api: Api = await make_api(settings={"language": "en"})
    client = await api.as_user("ou_alice")
    found = await events(client, {"question": "which incidents are open?"})
    assert found[-1][0] == "done"
    assert found[-1][1]["code"] == "no_agent"
    assert "/incidents" in found[-1][1]["answer"]
