"""The model words the report, once, on redacted facts; it never chooses the suggestions, and
any failure or unfit answer leaves the rules' report standing. The real OpenAI client talks to
a protocol-faithful fake server; the report's numbers come from the seeded week on Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.config import load_settings
from bot.reports import ReportDesk
from storage.coordination import MemoryCoordination
from storage.database import Database
from tests.lark.testbot import card_buttons
from tests.report.seed import CHAT, seed_week
from tests.support.fake_llm import FakeFailure, FakeLLM, FakeTurn, fake_llm
from tests.unit.test_cards import shown
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.openai_chat import OpenAIChat
from workflows.llm.prompt import Scrubber
from workflows.llm.summary import checked, word_report

CALM = "本周告警 52 条，NoisyProbe 最吵。响应中位数 5 分钟。"


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as server:
        yield server


def guard_for(fake: FakeLLM, db: Database) -> ModelGuard:
    model = OpenAIChat("sk-test-0123456789", "gpt-test", base_url=f"{fake.base_url}/v1")
    return ModelGuard(model, db, MemoryCoordination(), LlmConfig(retries=1))


async def test_one_call_on_redacted_facts(fake: FakeLLM, migrated_db: Database) -> None:
    fake.script(FakeTurn(text=f"  {CALM}\n"))
    facts = {"alerts": 52, "noisiest": [{"alert": "Probe token=s3cr3tvalue", "alerts": 30}]}
    words = await word_report(guard_for(fake, migrated_db), Scrubber(), facts, language="zh")
    assert words == CALM
    assert len(fake.requests) == 1
    sent = str(fake.requests[0].body["messages"])
    assert "s3cr3tvalue" not in sent
    assert '<data kind=\\"report\\">' in sent or '<data kind="report">' in sent
    assert "Simplified Chinese" in sent
    async with migrated_db.engine.connect() as conn:
        purposes = (await conn.execute(text("SELECT purpose FROM llm_turns"))).all()
    assert [p for (p,) in purposes] == ["report"]


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "See [the dashboard](https://evil.example).",
        "```\nrm -rf /\n```",
        "One. Two. Three. Four. Five. Six.",
        "x" * 800,
    ],
)
def test_unfit_answers_are_dropped(answer: str) -> None:
    assert checked(answer) is None


async def test_the_model_only_words_the_report(
    fake: FakeLLM, migrated_db: Database, tmp_path: Path
) -> None:
    await seed_week(migrated_db, datetime.now(UTC) - timedelta(days=8))
    settings = load_settings(home=str(tmp_path))
    plain = ReportDesk(settings, migrated_db, b"k" * 32, MemoryCoordination())
    worded = ReportDesk(
        settings, migrated_db, b"k" * 32, MemoryCoordination(), guard=guard_for(fake, migrated_db)
    )
    fake.script(FakeTurn(text=CALM), FakeFailure(status=500))
    with_words = await worded.report(CHAT, 24 * 30)
    assert CALM in shown(with_words)
    assert "模型" in shown(with_words)
    without = await plain.report(CHAT, 24 * 30)
    failed = await worded.report(CHAT, 24 * 30)  # the model answers 500: the rules text stands
    assert CALM not in shown(failed)
    assert "模型" not in shown(failed)

    # the same suggestions whatever the model says (buttons compared without their signature
    # differences: the parameters are what matter)
    def kinds(card: dict[str, object]) -> list[tuple[str, object]]:
        values = card_buttons(card).values()
        return [(v["kind"], v["params"]) for v in values]

    assert kinds(with_words) == kinds(without) == kinds(failed)
    assert kinds(without)  # the seeded week has suggestions
