"""A council of models against three scripted fake model servers (two OpenAI-compatible, one
Anthropic) driving the real SDKs, with real Postgres: the fan-out, the merged view and its card,
a dead and a slow model, garbage, a replica killed mid-call, the per-model budget and
redaction."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from bot.sandbox.cardcheck import card_problem
from cards.council import council_view
from cards.incident import incident_card
from cards.texts import texts
from cards.views import DiagnosisView, IncidentView
from plugins import AlertContext, PolicyEngine, discover
from plugins.runbooks import RunbookBook
from storage import council as store
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.redaction import Redactor
from tests.support.fake_llm import FakeDelay, FakeLLM, FakeRaw, FakeTurn, fake_llm
from tests.support.wait import wait_until
from workflows.llm.advisor import ModelAdvisor
from workflows.llm.agent import DiagnosisAgent
from workflows.llm.anthropic_chat import AnthropicChat
from workflows.llm.council import Council, Seat
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.model import ChatModel
from workflows.llm.openai_chat import OpenAIChat
from workflows.llm.prompt import Scrubber
from workflows.rules import RulesAdvisor

SECRET = "hunter2-secret"
RUN = "00000000-0000-0000-0000-00000000c0c1"


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeLLM]]:
    async with fake_llm() as gpt, fake_llm() as claude, fake_llm() as qwen:
        yield {"gpt": gpt, "claude": claude, "qwen": qwen}


def models(fakes: dict[str, FakeLLM]) -> dict[str, ChatModel]:
    return {
        "gpt": OpenAIChat("sk-gpt-123456", "gpt-test", base_url=f"{fakes['gpt'].base_url}/v1"),
        "claude": AnthropicChat("sk-ant-123456", "claude-test", base_url=fakes["claude"].base_url),
        "qwen": OpenAIChat("unused", "qwen-test", base_url=f"{fakes['qwen'].base_url}/v1"),
    }


def build(
    db: Database,
    fakes: dict[str, FakeLLM],
    *,
    seconds: float = 30.0,
    replica: str = "replica-b",
    model_tokens: int | None = None,
    lease_seconds: float = 15.0,
    **config: Any,
) -> tuple[Council, Scrubber]:
    registry = discover({})
    policy = PolicyEngine({}, registry=registry, say=texts("en"))
    scrub = Scrubber(Redactor(known=[SECRET]))
    seats = [
        Seat(
            name,
            DiagnosisAgent(
                ModelGuard(
                    model,
                    db,
                    MemoryCoordination(),
                    LlmConfig(price_per_mtok_in=1.0, price_per_mtok_out=2.0, **config),
                    model_tokens=model_tokens,
                ),
                registry,
                policy,
                scrub,
                language="en",
            ),
        )
        for name, model in models(fakes).items()
    ]
    council = Council(
        db, seats, scrub, seconds=seconds, replica=replica, lease_seconds=lease_seconds
    )
    return council, scrub


def advisor_for(db: Database, council: Council, scrub: Scrubber) -> ModelAdvisor:
    registry = discover({})
    rules = RulesAdvisor(
        registry,
        PolicyEngine({}, registry=registry, say=texts("en")),
        RunbookBook.from_config([], registry),
        db,
    )
    agent = next(iter(council.seats.values())).agent
    return ModelAdvisor(rules, agent.guard, agent, scrub, language="en", council=council)


def answer(summary: str, *causes: tuple[str, float]) -> FakeTurn:
    body = {
        "summary": summary,
        "hypotheses": [{"cause": c, "confidence": p} for c, p in causes],
        "evidence": [],
        "next_checks": ["look at the disk of db-1"],
    }
    return FakeTurn(text=json.dumps(body), input_tokens=200, output_tokens=50)


def ended(outcome: str) -> float:
    """larkops_council_tasks_total for one outcome."""
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("larkops_council_tasks_total", {"outcome": outcome})
    return value or 0.0


def alert() -> AlertContext:
    return AlertContext(
        "DbDown on db-1",
        "critical",
        {"alertname": "DbDown", "instance": "db-1"},
        {"summary": f"db not answering, password={SECRET}"},
        "db",
    )


async def incident(db: Database) -> int:
    from storage.models import Incident

    async with db.session() as session:
        row = Incident(
            fingerprint="fp-db",
            title="DbDown on db-1",
            severity="critical",
            status="diagnosing",
            labels={"alertname": "DbDown"},
            chat_id="oc_ops",
        )
        session.add(row)
        await session.flush()
        return int(row.id)


def card_of(diagnosis: dict[str, Any], language: str = "zh") -> dict[str, Any]:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC)
    view = IncidentView(
        id=7,
        title="DbDown",
        severity="critical",
        status="diagnosing",
        service="db",
        source="alertmanager",
        labels={"instance": "db-1"},
        summary="db not answering",
        alert_count=1,
        first_seen=now,
        last_seen=now,
        diagnosis=DiagnosisView(
            summary=diagnosis["summary"],
            hypotheses=(),
            evidence=(),
            next_checks=tuple(diagnosis["next_checks"]),
            provider=diagnosis["provider"],
            partial=diagnosis["partial"],
            council=council_view(diagnosis["council"]),
        ),
    )
    return incident_card(view, texts(language), ZoneInfo("Asia/Shanghai"))


def panels(card: Any) -> list[dict[str, Any]]:
    if isinstance(card, dict):
        found = [card] if card.get("tag") == "collapsible_panel" else []
        return found + [p for value in card.values() for p in panels(value)]
    if isinstance(card, list):
        return [p for item in card for p in panels(item)]
    return []


async def test_three_models_are_asked_and_their_answers_merged_on_the_card(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    council, scrub = build(migrated_db, fakes)
    fakes["gpt"].script(answer("The disk of db-1 is full.", ("disk full on db-1", 0.9)))
    fakes["claude"].script(answer("db-1 ran out of disk.", ("db-1 disk is full", 0.8)))
    fakes["qwen"].script(answer("Network trouble.", ("network partition", 0.6)))
    incident_id = await incident(migrated_db)
    advisor = advisor_for(migrated_db, council, scrub)

    diagnosis = await advisor.diagnose(alert(), incident_id=incident_id, run_id=RUN)

    assert diagnosis["provider"] == "council"
    top = diagnosis["council"]["hypotheses"][0]
    assert top["support"] == ["gpt", "claude"]
    assert top["against"] == ["qwen"]
    assert top["confidence"] == pytest.approx((0.9 + 0.8) / 3, abs=0.001)
    assert diagnosis["council"]["agreement"] == pytest.approx(2 / 3, abs=0.001)
    assert diagnosis["summary"] == "The disk of db-1 is full."
    members = {m["name"]: m for m in diagnosis["council"]["members"]}
    assert {m["status"] for m in members.values()} == {"answered"}
    assert members["claude"]["tokens_in"] == 200
    assert members["gpt"]["cost_usd"] == pytest.approx((200 * 1 + 50 * 2) / 1e6)
    # each model asked once, with the secret redacted from every prompt and from the batch
    for fake in fakes.values():
        assert len(fake.requests) == 1
        assert SECRET not in json.dumps(fake.requests[0].body)
    async with migrated_db.engine.connect() as conn:
        stored = await conn.execute(text("SELECT brief::text, merged::text FROM council_batches"))
        assert SECRET not in json.dumps([tuple(row) for row in stored.all()])

    card = card_of(diagnosis)
    assert card_problem(card) is None
    shown = json.dumps(card, ensure_ascii=False)
    assert "3/3 个模型作答，一致度 67%" in shown
    assert "支持：gpt、claude；不认同：qwen" in shown
    folds = panels(card)
    assert [p["header"]["title"]["content"] for p in folds] == [
        "gpt（gpt-test）：已作答",
        "claude（claude-test）：已作答",
        "qwen（qwen-test）：已作答",
    ]
    assert all(p["expanded"] is False for p in folds)
    english = card_of(diagnosis, "en")
    assert card_problem(english) is None
    assert "supported by gpt, claude; not by qwen" in json.dumps(english, ensure_ascii=False)


async def test_a_slow_and_a_broken_model_do_not_hold_the_answer(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    council, _ = build(migrated_db, fakes, seconds=3.0, retries=1)
    fakes["gpt"].script(answer("The disk is full.", ("disk full", 0.9)))
    fakes["claude"].script(FakeDelay(60, then=answer("late", ("disk full", 0.9))))
    fakes["qwen"].script(FakeRaw("<html>502 bad gateway</html>"))
    outcomes = ("answered", "failed", "timed_out")
    before = {o: ended(o) for o in outcomes}

    verdict = await council.convene(key="question:slow", purpose="question", alert=alert())

    status = {m["name"]: m["status"] for m in verdict.members}
    assert status == {"gpt": "answered", "claude": "timed_out", "qwen": "failed"}
    errors = {m["name"]: m["error"] for m in verdict.members}
    assert "unusable response" in errors["qwen"]
    assert verdict.merged["answered"] == 1
    assert verdict.merged["asked"] == 3
    assert verdict.merged["hypotheses"][0]["support"] == ["gpt"]
    assert {o: ended(o) - before[o] for o in outcomes} == dict.fromkeys(outcomes, 1.0)
    # the late answer cannot change the stored result: the task is over
    assert not await store.finish(
        migrated_db, verdict.batch_id, "claude", 1, store.Outcome("answered")
    )


async def test_garbage_answers_leave_a_model_out_and_none_at_all_falls_back_to_rules(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    council, scrub = build(migrated_db, fakes)
    for fake in fakes.values():
        fake.script(FakeTurn(text="it is probably the network"), FakeTurn(text="{not json"))
    incident_id = await incident(migrated_db)
    advisor = advisor_for(migrated_db, council, scrub)

    diagnosis = await advisor.diagnose(alert(), incident_id=incident_id, run_id=RUN)

    assert diagnosis["provider"] == "rules"
    assert diagnosis["fallback"] == "no model of the council answered"


async def test_a_task_whose_replica_died_mid_call_is_run_again_and_counted_once(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    """Replica A opened the batch and claimed gpt's task, then died (its lease ran out).
    Replica B, continuing the run, claims it again; A's late result is refused."""
    council, _ = build(migrated_db, fakes, replica="replica-b")
    from datetime import UTC, datetime, timedelta

    batch_id, _ = await store.open_batch(
        migrated_db,
        key="diagnosis:died",
        purpose="question",
        incident_id=None,
        brief={"alert": {"title": "DbDown on db-1", "severity": "critical"}},
        deadline_at=datetime.now(UTC) + timedelta(seconds=30),
        members=[(s.name, s.provider, s.model) for s in council.seats.values()],
    )
    claimed = await store.claim(
        migrated_db, batch_id, ["gpt"], replica="replica-a", lease_seconds=0
    )
    first = claimed["gpt"]
    assert first == 1
    fakes["gpt"].script(answer("disk full", ("disk full", 0.9)))
    fakes["claude"].script(answer("disk full", ("disk full", 0.7)))
    fakes["qwen"].script(answer("disk full", ("disk full", 0.8)))

    verdict = await council.convene(key="diagnosis:died", purpose="question", alert=alert())

    assert verdict.batch_id == batch_id
    assert [m["status"] for m in verdict.members] == ["answered"] * 3
    assert verdict.merged["hypotheses"][0]["support"] == ["gpt", "claude", "qwen"]
    assert verdict.merged["agreement"] == 1.0
    # replica A comes back with its answer: refused, the result holds gpt once
    late = store.Outcome("answered", answer={"summary": "stale", "hypotheses": [["x", 1.0]]})
    assert not await store.finish(migrated_db, batch_id, "gpt", first, late)
    async with migrated_db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT member, attempt, claimed_by FROM council_tasks ORDER BY id")
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("gpt", 2, "replica-b"),
        ("claude", 1, "replica-b"),
        ("qwen", 1, "replica-b"),
    ]
    # the same key again (a retried run) asks nobody and gives the stored result
    again = await council.convene(key="diagnosis:died", purpose="question", alert=alert())
    assert again.merged == verdict.merged
    assert sum(len(fake.requests) for fake in fakes.values()) == 3


async def test_a_replica_killed_mid_call_loses_its_task_to_another_before_the_deadline(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    """Replica A asks the three models; two answer, gpt is slow, and A dies mid-call (its
    process stops: no renewal, no result). Its lease runs out and replica B, continuing the run,
    asks gpt again: the result holds every model once, gpt's from B."""
    a, _ = build(migrated_db, fakes, replica="replica-a", lease_seconds=1.0)
    b, _ = build(migrated_db, fakes, replica="replica-b", lease_seconds=1.0)
    fakes["gpt"].script(
        FakeDelay(60, then=answer("late", ("never shown", 0.9))),
        answer("disk full", ("disk full", 0.8)),
    )
    fakes["claude"].script(answer("disk full", ("disk full", 0.7)))
    fakes["qwen"].script(answer("disk full", ("disk full", 0.6)))

    async def answered() -> bool:
        async with migrated_db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT count(*) FROM council_tasks WHERE status = 'answered'")
            )
            return rows.scalar_one() == 2 and len(fakes["gpt"].requests) == 1

    dying = asyncio.create_task(
        a.convene(key="diagnosis:killed", purpose="question", alert=alert())
    )
    await wait_until(answered, 20, "claude and qwen to answer while gpt is slow")
    dying.cancel()  # replica A is gone mid-call
    with contextlib.suppress(asyncio.CancelledError):
        await dying

    verdict = await b.convene(key="diagnosis:killed", purpose="question", alert=alert())

    assert [m["status"] for m in verdict.members] == ["answered"] * 3
    assert verdict.merged["hypotheses"][0]["support"] == ["gpt", "claude", "qwen"]
    assert "never shown" not in json.dumps(verdict.merged)
    async with migrated_db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT member, attempt, claimed_by FROM council_tasks ORDER BY id")
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("gpt", 2, "replica-b"),
        ("claude", 1, "replica-a"),
        ("qwen", 1, "replica-a"),
    ]
    assert len(fakes["gpt"].requests) == 2


async def test_the_sweep_finishes_a_batch_whose_caller_is_gone(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    council, _ = build(migrated_db, fakes)
    from datetime import UTC, datetime, timedelta

    batch_id, _ = await store.open_batch(
        migrated_db,
        key="question:orphan",
        purpose="question",
        incident_id=None,
        brief={"alert": {"title": "Why is db-1 slow?", "severity": "info"}},
        deadline_at=datetime.now(UTC) + timedelta(seconds=30),
        members=[(s.name, s.provider, s.model) for s in council.seats.values()],
    )
    await store.claim(migrated_db, batch_id, ["gpt", "claude"], replica="gone", lease_seconds=0)
    for fake in fakes.values():
        fake.script(answer("slow disk", ("slow disk", 0.5)))

    assert await council.sweep() == 1

    stored = await store.batch(migrated_db, batch_id)
    assert stored.status == "done"
    assert stored.merged["answered"] == 3
    assert await council.sweep() == 0


async def test_each_model_keeps_to_its_own_budget_per_incident(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    council, _ = build(migrated_db, fakes, model_tokens=1000)
    incident_id = await incident(migrated_db)
    big = FakeTurn(
        text=json.dumps({"summary": "disk", "hypotheses": [{"cause": "disk", "confidence": 1}]}),
        input_tokens=1500,
    )
    fakes["gpt"].script(big)
    fakes["claude"].script(answer("disk", ("disk", 0.5)))
    fakes["qwen"].script(answer("disk", ("disk", 0.5)))
    await council.convene(
        key="diagnosis:one", purpose="diagnosis", alert=alert(), incident_id=incident_id
    )
    fakes["claude"].script(answer("disk", ("disk", 0.5)))
    fakes["qwen"].script(answer("disk", ("disk", 0.5)))

    second = await council.convene(
        key="diagnosis:two", purpose="diagnosis", alert=alert(), incident_id=incident_id
    )

    members = {m["name"]: m for m in second.members}
    assert members["gpt"]["status"] == "failed"
    assert "budget" in members["gpt"]["error"]
    assert len(fakes["gpt"].requests) == 1  # the second call was never made
    assert [members[n]["status"] for n in ("claude", "qwen")] == ["answered", "answered"]


async def test_a_council_needs_two_models_and_distinct_names() -> None:
    from pydantic import ValidationError

    one = {"name": "gpt", "provider": "openai", "model": "gpt-4o-mini"}
    with pytest.raises(ValidationError, match="at least two"):
        LlmConfig(council=[one])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="same name"):
        LlmConfig(council=[one, one])  # type: ignore[list-item]
    assert LlmConfig().council == ()


def test_the_council_is_built_from_the_llm_section_and_its_mistakes_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from bot.config import ConfigError, load_settings
    from bot.incidents.advisor import build_council, build_toolkit

    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LOCAL_KEY", "LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    members = [
        {"name": "gpt", "provider": "openai", "model": "gpt-4o-mini"},
        {"name": "claude", "provider": "anthropic", "model": "claude-x"},
        {
            "name": "local",
            "provider": "openai",
            "model": "qwen",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "LOCAL_KEY",
            "incident_tokens": 5000,
        },
    ]
    plain = load_settings()
    assert build_council(plain, None, build_toolkit(plain)) is None  # type: ignore[arg-type]

    missing = load_settings(llm={"council": members}, OPENAI_API_KEY="sk-0123456789")
    with pytest.raises(ConfigError, match=r"^llm\.council\.claude: ANTHROPIC_API_KEY is empty"):
        build_council(missing, None, build_toolkit(missing))  # type: ignore[arg-type]

    monkeypatch.setenv("LOCAL_KEY", "sk-local-123456")
    ready = load_settings(
        llm={"council": members},
        OPENAI_API_KEY="sk-0123456789",
        ANTHROPIC_API_KEY="sk-ant-0123456789",
    )
    council = build_council(ready, None, build_toolkit(ready))  # type: ignore[arg-type]
    assert council is not None
    assert council.names == ("gpt", "claude", "local")
    local = council.seats["local"].agent.guard
    assert (local.model.provider, local.model.model, local.model_tokens) == ("openai", "qwen", 5000)
    # a local server has its own rate limit; the others share their provider's
    assert local.rate_key == "llm:openai@http://127.0.0.1:9/v1"
    assert council.seats["gpt"].agent.guard.rate_key == "llm:openai"


async def test_the_incident_budget_holds_for_the_council_as_a_whole(
    migrated_db: Database, fakes: dict[str, FakeLLM]
) -> None:
    council, _ = build(migrated_db, fakes, incident_tokens=1000)
    incident_id = await incident(migrated_db)
    for fake in fakes.values():
        fake.script(answer("disk", ("disk", 0.5)))  # 250 tokens each, 750 together
    first = await council.convene(
        key="diagnosis:a", purpose="diagnosis", alert=alert(), incident_id=incident_id
    )
    assert first.merged["answered"] == 3
    for fake in fakes.values():
        fake.script(answer("disk", ("disk", 0.5)))
    await council.convene(
        key="diagnosis:b", purpose="diagnosis", alert=alert(), incident_id=incident_id
    )
    # the second round starts under the budget (750 of 1000); its members check it as they
    # call, at the same moment, so one that starts after another has answered may be refused
    before_third = sum(len(fake.requests) for fake in fakes.values())
    assert 4 <= before_third <= 6

    third = await council.convene(
        key="diagnosis:c", purpose="diagnosis", alert=alert(), incident_id=incident_id
    )

    assert [m["status"] for m in third.members] == ["failed"] * 3
    assert all("incident's token budget" in m["error"] for m in third.members)
    # over the budget, no member calls its model at all
    assert sum(len(fake.requests) for fake in fakes.values()) == before_third
