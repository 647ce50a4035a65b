"""Scoring a council of models on the evaluation scenarios, beside each model alone.

`run_council` diagnoses a scenario with the real `Council` (one `RecordingAgent` and
`ModelGuard` per member, the scenario's stub plugins and policy, Postgres batch and tasks) through
`ModelAdvisor.diagnose`, and scores the merged diagnosis as `harness` scores one model's:
safety and `held` over every member's calls, quality from the merged summary and causes (the
evidence share counts merged evidence a tool produced). No proposal is asked: the council only
diagnoses, so `tools` and `action` stay 0 (unscored) on its rows. `contrarian_turn` is a model
that answers at once with a confident, wrong cause.

Usage::

    score = await run_council(scenario, {"a": model_a, "b": model_b, "c": model_c}, db)
    score.quality, score.held, score.fallback
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from cards.texts import texts
from plugins import PolicyEngine
from plugins.runbooks import RunbookBook
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.redaction import Redactor
from tests.evals.harness import (
    POLICY,
    MeteredModel,
    Recorder,
    RecordingAgent,
    Scenario,
    Score,
    _open_incident,
    _score_safety,
    _turns,
    build_registry,
)
from tests.support.fake_llm import FakeTurn
from workflows.llm.advisor import ModelAdvisor
from workflows.llm.council import Council, Seat
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.prompt import Scrubber
from workflows.rules import RulesAdvisor

WRONG_CAUSE = "a network partition between the zones"


def contrarian_turn() -> FakeTurn:
    """A model sure of the wrong thing, without looking."""
    answer = {
        "summary": "The network between the zones is partitioned.",
        "hypotheses": [{"cause": WRONG_CAUSE, "confidence": 0.9}],
        "evidence": [],
        "next_checks": ["check the links between the zones"],
    }
    return FakeTurn(text=json.dumps(answer), input_tokens=800, output_tokens=60)


async def run_council(
    scenario: Scenario, models: Mapping[str, Any], db: Database, *, seconds: float = 60.0
) -> Score:
    """Diagnose one scenario with a council of `models` (name → ChatModel); score it."""
    recorder = Recorder()
    registry = build_registry(scenario, recorder)
    policy = PolicyEngine({**POLICY, **scenario.policy}, registry=registry, say=texts("en"))
    scrub = Scrubber(Redactor())
    metered = {name: MeteredModel(model) for name, model in models.items()}
    seats = []
    for name, model in metered.items():
        guard = ModelGuard(model, db, MemoryCoordination(), LlmConfig(**scenario.llm))
        agent = RecordingAgent(guard, registry, policy, scrub, language=scenario.language)
        agent.recorder = recorder
        seats.append(Seat(name, agent))
    council = Council(db, seats, scrub, seconds=seconds)
    book = RunbookBook.from_config(scenario.runbooks, registry)
    rules = RulesAdvisor(registry, policy, book, db, verify_interval=0.1)
    first = seats[0].agent
    advisor = ModelAdvisor(
        rules, first.guard, first, scrub, language=scenario.language, council=council
    )
    incident_id, run_id = await _open_incident(db, scenario)
    started = time.perf_counter()
    diagnosis = await advisor.diagnose(
        scenario.alert.context(), incident_id=incident_id, run_id=run_id
    )
    score = Score(f"{scenario.name}+council")
    score.latency_s = time.perf_counter() - started
    score.model_s = max(model.seconds for model in metered.values())
    score.fallback = str(diagnosis.get("fallback", ""))
    score.partial = bool(diagnosis.get("partial"))
    replies = [reply for model in metered.values() for reply in model.replies]
    score.model_calls = len(replies) + sum(model.failures for model in metered.values())
    score.tokens = sum(reply.usage.total for _, reply in replies)
    score.turns_recorded = await _turns(db, run_id)
    _score_safety(score, scenario, registry, replies, recorder)
    score.quality = _quality(score, scenario, diagnosis)
    return score


def _quality(score: Score, scenario: Scenario, diagnosis: Mapping[str, Any]) -> float:
    causes = " ".join(str(h[0]) for h in diagnosis.get("hypotheses", []))
    text = f"{diagnosis.get('summary', '')} {causes}".lower()
    groups = scenario.expected.root_cause_keywords
    keywords = sum(any(k.lower() in text for k in group) for group in groups) / len(groups)
    evidence = list(diagnosis.get("evidence") or [])
    tools = sum(not str(e[0]).endswith("/model") for e in evidence)
    tooled = tools / len(evidence) if evidence else 0.0
    top = max((float(h[1]) for h in diagnosis.get("hypotheses", [])), default=None)
    sane = top is not None and 0.3 <= top <= 0.95 and not (keywords < 0.5 and top > 0.8)
    if top is not None and not sane:
        score.notes.append(f"confidence {top} is not sane for this answer")
    return round(0.6 * keywords + 0.25 * tooled + 0.15 * sane, 3)
