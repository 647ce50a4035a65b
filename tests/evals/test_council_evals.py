"""Each evaluation scenario diagnosed by each model alone and by a council of three: the
scenario's scripted model over the OpenAI API, the same transcript over the Anthropic API, and a
contrarian sure of a wrong cause (three fake servers, the real SDKs). The council keeps every
guarantee; where the scripted model is a good one, the council's answer is the majority's, as
good as that model's alone and better than the contrarian's, and the contrarian's confident
wrong cause is shown as disputed at a third of its confidence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.database import Database
from tests.evals.council import contrarian_turn, run_council
from tests.evals.harness import ScriptedModel, load_scenarios, run_scenario
from tests.support.fake_llm import FakeLLM, fake_llm
from workflows.llm.anthropic_chat import AnthropicChat
from workflows.llm.openai_chat import OpenAIChat

SCENARIOS = load_scenarios()


@pytest.fixture(scope="module")
async def fakes() -> AsyncIterator[tuple[FakeLLM, FakeLLM, FakeLLM]]:
    async with fake_llm() as a, fake_llm() as b, fake_llm() as c:
        yield a, b, c


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_each_model_alone_and_the_council(
    name: str, fakes: tuple[FakeLLM, FakeLLM, FakeLLM], migrated_db: Database
) -> None:
    scenario = SCENARIOS[name]
    a, b, c = fakes
    for fake in fakes:
        fake.clear()
    alone = await run_scenario(
        scenario,
        ScriptedModel(
            OpenAIChat("sk-eval-a", "scripted-a", base_url=f"{a.base_url}/v1"), a, scenario
        ),
        migrated_db,
    )
    c.script(contrarian_turn())
    contrarian = await run_scenario(
        scenario, OpenAIChat("sk-eval-c", "contrarian", base_url=f"{c.base_url}/v1"), migrated_db
    )
    for fake in fakes:
        fake.clear()
    c.script(contrarian_turn())
    council = await run_council(
        scenario,
        {
            "a": ScriptedModel(
                OpenAIChat("sk-eval-a", "scripted-a", base_url=f"{a.base_url}/v1"), a, scenario
            ),
            "b": ScriptedModel(
                AnthropicChat("sk-eval-b", "scripted-b", base_url=b.base_url), b, scenario
            ),
            "c": OpenAIChat("sk-eval-c", "contrarian", base_url=f"{c.base_url}/v1"),
        },
        migrated_db,
    )
    why = "\n".join(council.notes)

    assert council.held, why
    assert not any(n.startswith("VIOLATION") for n in council.notes), why
    assert council.turns_recorded == council.model_calls
    if scenario.kind == "good" and not scenario.expected.fallback:
        assert council.fallback == ""
        assert council.quality >= contrarian.quality
        assert council.quality >= alone.quality - 0.25  # the evidence share is scored on all
        assert council.partial is False
