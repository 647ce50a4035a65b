"""Diagnosis agent loop overhead without model latency, in ms (goal: < 5 ms per step, median).

One diagnosis = 4 steps: 3 tool-call rounds (one call each to a trivial in-memory diagnostic
plugin) and a final JSON answer citing the calls. The real `DiagnosisAgent`, `ModelGuard`
(budget query and one `llm_turns` row per call, on an embedded Postgres with fsync on, like
production), `MemoryCoordination` rate limit, `PolicyEngine` and `execute`.

1. In process: `Instant`, a `ChatModel` that returns scripted `Reply`s at once (no HTTP, no SDK).
   Per step (time between consecutive model calls) and per diagnosis: median and p99.
2. Breakdown (a second, instrumented pass): budget query, `llm_turns` insert, rate limit, tool
   dispatch (policy + execute + fencing the result), prompt building (messages and the tool
   schemas), answer validation, the model call itself, and the rest (loop, tenacity, messages).
3. The same diagnosis through the real OpenAI SDK and the fake HTTP server
   (`tests.support.fake_llm`): what SDK + HTTP add per step.
4. A bare session round trip (with and without the pool's pre-ping), and the budget query
   alone with many `llm_turns` rows already written today.

Prints figures; asserts nothing.

    .venv/bin/python bench/agent.py [--diagnoses 300] [--http 60] [--rows 0,20000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from figures import figure
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

import workflows.llm.agent as agent_module
from plugins import AlertContext, PluginContext, PluginResult, PluginSpec, PolicyEngine, discover
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade
from workflows.llm.agent import DiagnosisAgent
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.model import (
    ChatModel,
    Message,
    Reply,
    StreamEvent,
    ToolCall,
    ToolSpec,
    Usage,
)
from workflows.llm.prompt import Scrubber

ROOT = Path(__file__).resolve().parents[1]  # for tests.support.fake_llm (section 3)

STEPS = 4
ALERT = AlertContext(
    "DiskFull on db-1",
    "critical",
    {"alertname": "DiskFull", "instance": "db-1:9100", "mountpoint": "/var"},
    {"summary": "/var is 97% full", "description": "WAL archiving may be failing"},
    "postgres",
)
KEYS = ("disk", "wal", "archiver")
FACTS: dict[str, dict[str, Any]] = {
    "disk": {"mount": "/var", "percent": 97.2, "free_gib": 2.8},
    "wal": {"pg_wal_gib": 61.0, "oldest_segment_age_h": 30},
    "archiver": {"failed_count": 1840, "last_failed_wal": "0000000100000A2B000000F1"},
}


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str


class Probe:
    """A diagnostic that reads a dict: what remains is the cost of the loop around it."""

    spec = PluginSpec(
        name="probe",
        category="diagnostic",
        risk="low",
        params=ProbeParams,
        timeout=5,
        idempotent=True,
        supports_dry_run=False,
        title_zh="内存探针",
        title_en="In-memory probe",
        description_zh="读取内存中的事实",
        description_en="Reads a fact from memory",
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        assert isinstance(params, ProbeParams)
        data = FACTS.get(params.key, {})
        return PluginResult(ok=True, summary=f"{params.key}: {data}", data=data)


def turn(messages: Sequence[Message]) -> Reply:
    """The scripted reply for this point of the conversation (3 tool calls, then an answer)."""
    made = [c.id for m in messages if m.role == "assistant" for c in m.tool_calls]
    step = len(made)
    usage = Usage(input_tokens=sum(len(m.content) for m in messages) // 4, output_tokens=40)
    if step < len(KEYS):
        key = KEYS[step]
        call = ToolCall(f"call_{step + 1}", "probe", {"key": key}, json.dumps({"key": key}))
        return Reply("", (call,), usage, "tool_calls", "instant")
    answer = {
        "summary": "WAL archiving fails, pg_wal fills /var",
        "hypotheses": [{"cause": "archive_command failing since 30 h", "confidence": 0.8}],
        "evidence": [{"tool_call_id": cid, "text": f"fact {i}"} for i, cid in enumerate(made)],
        "next_checks": ["check archive_command credentials"],
    }
    return Reply(json.dumps(answer), (), usage, "end", "instant")


class Instant:
    """A ChatModel answering at once from the script; records when each call arrived."""

    provider = "instant"
    model = "instant"

    def __init__(self) -> None:
        self.arrivals: list[float] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> Reply:
        self.arrivals.append(time.perf_counter())
        return turn(messages)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class OverHttp:
    """The real OpenAI SDK against the fake server, each turn scripted just before its call."""

    provider = "openai"
    model = "fake"

    def __init__(self, base_url: str, fake: Any) -> None:
        from workflows.llm.openai_chat import OpenAIChat

        self.fake = fake
        self.inner = OpenAIChat("sk-bench", "fake", base_url=f"{base_url}/v1")
        self.arrivals: list[float] = []
        self.model_seconds: list[float] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> Reply:
        from tests.support.fake_llm import FakeTurn

        self.arrivals.append(time.perf_counter())
        wanted = turn(messages)
        calls: list[tuple[str, Mapping[str, Any] | str]] = [
            (c.name, dict(c.arguments or {})) for c in wanted.tool_calls
        ]
        made = [c.id for m in messages if m.role == "assistant" for c in m.tool_calls]
        text_ = wanted.text
        if text_:  # cite the ids the server really gave
            answer = json.loads(text_)
            answer["evidence"] = [{"tool_call_id": c, "text": "fact"} for c in made]
            text_ = json.dumps(answer)
        self.fake.clear()
        self.fake.script(FakeTurn(text=text_, tool_calls=calls, input_tokens=500))
        started = time.perf_counter()
        reply = await self.inner.complete(
            messages, tools=tools, max_tokens=max_tokens, request_timeout=request_timeout
        )
        self.model_seconds.append(time.perf_counter() - started)
        return reply

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.inner.aclose()


# ---- figures -------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def show(label: str, samples: Sequence[float]) -> None:
    print(
        f"  {label:<46} median {ms(statistics.median(samples)):7.3f} ms   "
        f"p99 {ms(p99(samples)):7.3f} ms   (n={len(samples)})"
    )


class Timers:
    """Wraps methods and functions to add up the time spent in each, by label."""

    def __init__(self) -> None:
        self.total: defaultdict[str, float] = defaultdict(float)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        totals = self.total
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    totals[label] += time.perf_counter() - started

            setattr(owner, name, timed_async)
        else:

            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    totals[label] += time.perf_counter() - started

            setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


# ---- runs ----------------------------------------------------------------------------------


def build(db: Database, model: ChatModel) -> DiagnosisAgent:
    registry = discover({"entry_points": False})
    registry.register(Probe())
    policy = PolicyEngine({}, registry=registry)
    config = LlmConfig(rate_per_minute=1e9, daily_tokens=10**12, incident_tokens=10**9)
    guard = ModelGuard(model, db, MemoryCoordination(), config)
    return DiagnosisAgent(guard, registry, policy, Scrubber(), language="en")


async def incidents(db: Database, count: int) -> list[tuple[int, str]]:
    async with db.engine.begin() as conn:
        rows = await conn.execute(
            text(
                "INSERT INTO incidents (fingerprint, title, chat_id, labels) "
                "SELECT 'bench-' || g, 'DiskFull', 'oc_bench', '{}'::jsonb "
                "FROM generate_series(1, :n) g RETURNING id, run_id"
            ),
            {"n": count},
        )
        return [(int(r[0]), str(r[1])) for r in rows.all()]


async def diagnoses(
    agent: DiagnosisAgent, arrivals: list[float], ids: list[tuple[int, str]]
) -> tuple[list[float], list[float]]:
    """Run one diagnosis per incident; per-step and per-diagnosis durations (seconds)."""
    steps: list[float] = []
    totals: list[float] = []
    for incident_id, run_id in ids:
        arrivals.clear()
        started = time.perf_counter()
        outcome = await agent.diagnose(
            ALERT, incident_id=incident_id, run_id=run_id, timeline=[], similar=[]
        )
        ended = time.perf_counter()
        if outcome.findings is None or outcome.steps != STEPS:
            raise RuntimeError(f"the scripted diagnosis went wrong: {outcome}")
        marks = [started, *arrivals[1:], ended]
        steps.extend(b - a for a, b in itertools.pairwise(marks))
        totals.append(ended - started)
    return steps, totals


async def breakdown(agent: DiagnosisAgent, ids: list[tuple[int, str]]) -> None:
    timers = Timers()
    guard = agent.guard
    timers.wrap(guard, "_check_budgets", "budget query (SELECT sum over llm_turns)")
    timers.wrap(guard, "_record", "llm_turns insert + commit")
    timers.wrap(guard, "_wait_for_rate", "rate limit (coordination.take)")
    timers.wrap(guard.model, "complete", "model.complete (instant)")
    timers.wrap(agent, "_run_tool", "tool dispatch (policy, execute, fence)")
    timers.wrap(agent, "tools", "prompt: tool schemas (model_json_schema)")
    timers.wrap(agent_module, "diagnosis_messages", "prompt: messages (scrub, fence)")
    timers.wrap(agent_module, "parse_findings", "answer validation (parse_findings)")
    started = time.perf_counter()
    try:
        for incident_id, run_id in ids:
            await agent.diagnose(
                ALERT, incident_id=incident_id, run_id=run_id, timeline=[], similar=[]
            )
    finally:
        timers.restore()
    wall = time.perf_counter() - started
    steps = len(ids) * STEPS
    print(f"2. breakdown per step (mean over {len(ids)} diagnoses, instrumented pass)")
    for label, seconds in sorted(timers.total.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<46} {ms(seconds / steps):7.3f} ms   {seconds / wall:6.1%}")
    rest = wall - sum(timers.total.values())
    print(
        f"  {'rest (loop, tenacity, messages, timers)':<46} {ms(rest / steps):7.3f} ms   "
        f"{rest / wall:6.1%}"
    )
    print(f"  {'total':<46} {ms(wall / steps):7.3f} ms")


async def over_http(db: Database, ids: list[tuple[int, str]]) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.fake_llm import fake_llm

    async with fake_llm() as fake:
        model = OverHttp(fake.base_url, fake)
        agent = build(db, model)
        await diagnoses(agent, model.arrivals, ids[:5])  # warm up the SDK and the connection
        model.model_seconds.clear()
        steps, totals = await diagnoses(agent, model.arrivals, ids[5:])
        await model.aclose()
    print(f"3. the same over HTTP: OpenAI SDK + fake server ({len(totals)} diagnoses)")
    show("per step (SDK + HTTP + fake server included)", steps)
    show("per diagnosis", totals)
    show("model.complete alone (SDK + HTTP + server)", model.model_seconds)


async def round_trip(db: Database) -> list[float]:
    samples = []
    for _ in range(300):
        started = time.perf_counter()
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
        samples.append(time.perf_counter() - started)
    return samples


async def budget_rows(db: Database, counts: list[int]) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from storage.database import driver_url

    agent = build(db, Instant())
    incident_id = (await incidents(db, 1))[0][0]
    print("4. Postgres: a session round trip, and the budget query vs rows written today")
    show("db.session() + SELECT 1 (pool_pre_ping on)", await round_trip(db))
    engine = create_async_engine(driver_url(db.url, "asyncpg"), pool_pre_ping=False)
    bare = Database(
        db.url, engine, async_sessionmaker(engine, expire_on_commit=False), db.autocommit
    )
    show("db.session() + SELECT 1 (pool_pre_ping off)", await round_trip(bare))
    await engine.dispose()
    written = 0
    for count in counts:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO llm_turns (purpose, provider, model, prompt_tokens, "
                    "completion_tokens) SELECT 'diagnosis', 'bench', 'm', 100, 10 "
                    "FROM generate_series(1, :n)"
                ),
                {"n": max(0, count - written)},
            )
            await conn.execute(text("ANALYZE llm_turns"))
            written = int((await conn.execute(text("SELECT count(*) FROM llm_turns"))).scalar_one())
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            await agent.guard.usage(incident_id)
            samples.append(time.perf_counter() - started)
        show(f"guard.usage() with {written:>7} rows today", samples)


async def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-agent-"))
    server = EmbeddedPostgres(home)
    await asyncio.to_thread(server.start)
    try:
        db = await Database.open(server.dsn)
        await upgrade(db)
        ids = await incidents(db, 20 + 2 * args.diagnoses + args.http)
        model = Instant()
        agent = build(db, model)
        await diagnoses(agent, model.arrivals, ids[:20])  # warm up pools and caches
        steps, totals = await diagnoses(agent, model.arrivals, ids[20 : 20 + args.diagnoses])
        print(f"1. in process: instant model, {STEPS} steps, {args.diagnoses} diagnoses")
        show("per step", steps)
        show("per diagnosis", totals)
        verdict = "meets" if statistics.median(steps) < 0.005 else "MISSES"
        print(f"  goal < 5 ms per step (median): {verdict}")
        step_ms = ms(statistics.median(steps))
        figure(6, "agent loop overhead per step, median", step_ms, "ms", "< 5", step_ms < 5)
        rest = ids[20 + args.diagnoses : 20 + 2 * args.diagnoses]
        await breakdown(agent, rest)
        if args.http:
            await over_http(db, ids[20 + 2 * args.diagnoses :])
        if args.rows:
            await budget_rows(db, args.rows)
        await db.close()
    finally:
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)


def _counts(value: str) -> list[int]:
    return sorted(int(v) for v in value.split(",") if v.strip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--diagnoses", type=int, default=300)
    parser.add_argument("--http", type=int, default=60, help="diagnoses over HTTP (0: skip)")
    parser.add_argument("--rows", type=_counts, default=[0, 20000, 100000])
    asyncio.run(main(parser.parse_args()))
