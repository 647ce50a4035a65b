"""A 3-model council diagnosis against the slowest single model, in wall time (goal ≤ 1.1×).

Three fake model servers (`tests.support.fake_llm`: two OpenAI-compatible, one Anthropic) answer
each call after a known latency (default 0.3 s, 0.6 s and 1.0 s) with a final diagnosis. The
real SDKs, `ModelGuard` (budget queries, `llm_turns` rows), `DiagnosisAgent`, and the council's
Postgres batch and tasks (claims, leases, results) on an embedded Postgres.

1. The slowest model alone: `DiagnosisAgent.diagnose`, median wall time.
2. The council of all three: `Council.convene`, median wall time (a new batch each time).
3. The ratio of the medians, printed beside the goal; and what the council adds over the
   slowest model, in ms.

    .venv/bin/python bench/council.py [--rounds 10] [--latencies 0.3,0.6,1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import figure

ROOT = Path(__file__).resolve().parents[1]  # for tests.support.fake_llm
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cards.texts import texts  # noqa: E402
from plugins import AlertContext, PolicyEngine, discover  # noqa: E402
from storage.coordination import MemoryCoordination  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.embedded import EmbeddedPostgres  # noqa: E402
from storage.migration import upgrade  # noqa: E402
from storage.redaction import Redactor  # noqa: E402
from tests.support.fake_llm import FakeDelay, FakeLLM, FakeTurn, fake_llm  # noqa: E402
from workflows.llm.agent import DiagnosisAgent  # noqa: E402
from workflows.llm.anthropic_chat import AnthropicChat  # noqa: E402
from workflows.llm.council import Council, Seat  # noqa: E402
from workflows.llm.guard import LlmConfig, ModelGuard  # noqa: E402
from workflows.llm.model import ChatModel  # noqa: E402
from workflows.llm.openai_chat import OpenAIChat  # noqa: E402
from workflows.llm.prompt import Scrubber  # noqa: E402

ALERT = AlertContext("DbDown on db-1", "critical", {"instance": "db-1"}, {}, "db")
ANSWER = json.dumps(
    {
        "summary": "The disk of db-1 is full.",
        "hypotheses": [{"cause": "disk full on db-1", "confidence": 0.8}],
        "evidence": [],
        "next_checks": ["df -h on db-1"],
    }
)


def agent(db: Database, model: ChatModel) -> DiagnosisAgent:
    registry = discover({})
    policy = PolicyEngine({}, registry=registry, say=texts("en"))
    config = LlmConfig(rate_per_minute=100_000, daily_tokens=10**9, incident_tokens=10**9)
    guard = ModelGuard(model, db, MemoryCoordination(), config)
    return DiagnosisAgent(guard, registry, policy, Scrubber(Redactor()), language="en")


def script(fakes: list[FakeLLM], latencies: list[float], rounds: int) -> None:
    for fake, latency in zip(fakes, latencies, strict=True):
        fake.clear()
        fake.script(*[FakeDelay(latency, FakeTurn(text=ANSWER)) for _ in range(rounds)])


def show(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"  {label:<34} median {median * 1000:8.1f} ms   max {max(samples) * 1000:8.1f} ms")
    return median


async def main(args: argparse.Namespace) -> None:
    latencies = [float(v) for v in args.latencies.split(",")]
    assert len(latencies) == 3, "three latencies, one per model"
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-council-"))
    server = EmbeddedPostgres(home)
    await asyncio.to_thread(server.start)
    try:
        db = await Database.open(server.dsn)
        await upgrade(db)
        async with contextlib.AsyncExitStack() as stack:
            fakes = [await stack.enter_async_context(fake_llm()) for _ in range(3)]
            models: list[ChatModel] = [
                OpenAIChat("sk-bench-1", "gpt-bench", base_url=f"{fakes[0].base_url}/v1"),
                AnthropicChat("sk-ant-bench", "claude-bench", base_url=fakes[1].base_url),
                OpenAIChat("unused", "local-bench", base_url=f"{fakes[2].base_url}/v1"),
            ]
            agents = [agent(db, model) for model in models]
            slowest = max(range(3), key=lambda i: latencies[i])
            council = Council(
                db,
                [Seat(f"m{i}", a) for i, a in enumerate(agents)],
                Scrubber(Redactor()),
                seconds=max(latencies) * 5 + 5,
            )
            # warm up: SDK clients, connection pools, the first queries
            script(fakes, latencies, 2)
            await council.convene(key="warm", purpose="question", alert=ALERT)
            await agents[slowest].diagnose(
                ALERT, incident_id=None, run_id=None, timeline=[], similar=[]
            )

            script(fakes, latencies, args.rounds)
            single = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                outcome = await agents[slowest].diagnose(
                    ALERT, incident_id=None, run_id=None, timeline=[], similar=[]
                )
                single.append(time.perf_counter() - started)
                assert outcome.findings is not None, outcome.reason

            script(fakes, latencies, args.rounds)
            together = []
            for n in range(args.rounds):
                started = time.perf_counter()
                verdict = await council.convene(key=f"bench:{n}", purpose="question", alert=ALERT)
                together.append(time.perf_counter() - started)
                assert verdict.merged["answered"] == 3, verdict.members

            for model in models:
                await model.aclose()
        print(
            f"council of 3 (latencies {', '.join(f'{v:g} s' for v in latencies)}), "
            f"{args.rounds} rounds"
        )
        one = show(f"slowest model alone ({latencies[slowest]:g} s)", single)
        three = show("council of 3", together)
        ratio = three / one
        verdict_text = "meets" if ratio <= 1.1 else "MISSES"
        print(f"  council / slowest: {ratio:.3f}×   goal ≤ 1.1×: {verdict_text}")
        print(f"  the council adds {(three - one) * 1000:.1f} ms over the slowest model")
        figure(20, "council of 3 vs slowest model, wall time", ratio, "×", "≤ 1.1", ratio <= 1.1)
        await db.close()
    finally:
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--latencies", default="0.3,0.6,1.0")
    asyncio.run(main(parser.parse_args()))
