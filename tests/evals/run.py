"""Run the evaluation scenarios and print a score table (never asserts).

With `OPENAI_API_KEY` (or `OPENAI_BASE_URL` alone, for a keyless compatible server) or
`ANTHROPIC_API_KEY` set, the scenarios run against that REAL model — no script: the model sees
the alert and the production tool schemas, the stub plugins replay the recorded outputs.
Without a key, the scripted transcripts are replayed through the fake server
(`tests.support.fake_llm`) with the real SDK client, and the output says so. A temporary
embedded Postgres holds the incidents and the guard's `llm_turns`.

    .venv/bin/python -m tests.evals.run                          # real model if a key is set
    .venv/bin/python -m tests.evals.run --provider anthropic --model claude-3-5-haiku-latest
    .venv/bin/python -m tests.evals.run --scenario pg_blocking_report_query -v
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade
from tests.evals.council import contrarian_turn, run_council
from tests.evals.harness import Scenario, Score, ScriptedModel, load_scenarios, run_scenario
from tests.support.fake_llm import fake_llm
from workflows.llm.model import ChatModel
from workflows.llm.providers import build_model

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
COLUMNS = (
    ("scenario", 26),
    ("kind", 4),
    ("lang", 4),
    ("tools", 5),
    ("safety", 6),
    ("held", 4),
    ("quality", 7),
    ("action", 6),
    ("steps", 5),
    ("calls", 5),
    ("tokens", 6),
    ("latency", 7),
    ("fix -> policy", 30),
)


def real_provider(wanted: str | None) -> str | None:
    """The provider to run for real, or None (no key: replay the scripts)."""
    openai = bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))
    anthropic = bool(os.environ.get("ANTHROPIC_API_KEY"))
    if wanted == "openai":
        return "openai" if openai else None
    if wanted == "anthropic":
        return "anthropic" if anthropic else None
    return "openai" if openai else "anthropic" if anthropic else None


def real_model(provider: str, name: str) -> ChatModel:
    model = build_model(
        provider,
        name,
        openai_api_key=os.environ.get("OPENAI_API_KEY", ""),
        openai_base_url=os.environ.get("OPENAI_BASE_URL"),
        anthropic_api_key=os.environ.get("ANTHROPIC_API_KEY", ""),
        anthropic_base_url=os.environ.get("ANTHROPIC_BASE_URL"),
    )
    assert model is not None
    return model


def row(scenario: Scenario, score: Score) -> list[str]:
    fix = "-"
    if score.proposal is not None:
        decision = score.decision or {}
        fix = f"{score.proposal['plugin']} -> {decision.get('kind')} ({decision.get('risk')})"
    elif score.fallback:
        fix = "- (rules fallback)"
    return [
        score.scenario,
        scenario.kind,
        scenario.language,
        f"{score.tools:.2f}",
        f"{score.safety:.2f}",
        "yes" if score.held else "NO",
        f"{score.quality:.2f}",
        f"{score.action:.2f}",
        str(score.steps),
        str(score.model_calls),
        str(score.tokens),
        f"{score.latency_s:.2f}s",
        fix,
    ]


def cells(values: list[str]) -> str:
    return "  ".join(f"{v:<{w}}" for v, (_, w) in zip(values, COLUMNS, strict=True)).rstrip()


def show(results: list[tuple[Scenario, Score]], verbose: bool) -> None:
    header = cells([name for name, _ in COLUMNS])
    print(header)
    print("-" * (len(header) + 8))
    for scenario, score in results:
        print(cells(row(scenario, score)))
        if verbose:
            for note in score.notes:
                print(f"      · {note}")
    for kind in ("good", "bad"):
        chosen = [s for sc, s in results if sc.kind == kind]
        if chosen:
            means = {
                d: statistics.mean(getattr(s, d) for s in chosen)
                for d in ("tools", "safety", "quality", "action")
            }
            text = "  ".join(f"{d} {v:.2f}" for d, v in means.items())
            held = sum(s.held for s in chosen)
            print(
                f"mean of {len(chosen)} {kind}-model scenarios: {text}  held {held}/{len(chosen)}"
            )


async def evaluate(args: argparse.Namespace, scenarios: list[Scenario]) -> None:
    provider = real_provider(args.provider)
    home = Path(tempfile.mkdtemp(prefix="larkops-evals-"))
    server = EmbeddedPostgres(home, fsync=False)
    await asyncio.to_thread(server.start)
    results: list[tuple[Scenario, Score]] = []
    try:
        db = await Database.open(server.dsn, pool_size=2)
        await upgrade(db)
        if provider is not None:
            name = args.model or os.environ.get("LLM_MODEL") or DEFAULT_MODELS[provider]
            print(f"REAL model: {provider} {name} (no script; stub plugins replay recordings)\n")
            model = real_model(provider, name)
            for scenario in scenarios:
                results.append((scenario, await run_scenario(scenario, model, db)))
            await model.aclose()
        else:
            api = args.provider or "openai"
            print(
                "No API key set (OPENAI_API_KEY / ANTHROPIC_API_KEY): replaying the SCRIPTED "
                f"transcripts through the fake {api} server (tests.support.fake_llm).\n"
                "Scores below grade the scripts, not a model; tokens are estimated (4 chars).\n"
            )
            if args.council:
                results = await compare(scenarios, db)
            else:
                results = await replay(api, scenarios, db)
        await db.close()
    finally:
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)
    show(results, args.verbose)


async def replay(api: str, scenarios: list[Scenario], db: Database) -> list[tuple[Scenario, Score]]:
    results: list[tuple[Scenario, Score]] = []
    async with fake_llm() as fake:
        for scenario in scenarios:
            fake.clear()
            inner = scripted_client(api, fake.base_url)
            scripted = ScriptedModel(inner, fake, scenario)
            results.append((scenario, await run_scenario(scenario, scripted, db)))
            await inner.aclose()
    return results


async def compare(scenarios: list[Scenario], db: Database) -> list[tuple[Scenario, Score]]:
    """Per scenario: the scripted model alone, a contrarian alone (sure of a wrong cause), and
    the council of the script over OpenAI, the script over Anthropic and the contrarian. The
    council rows have no proposal (it only diagnoses): their action is not scored."""
    results: list[tuple[Scenario, Score]] = []
    async with fake_llm() as a, fake_llm() as b, fake_llm() as c:
        for scenario in scenarios:
            for fake in (a, b, c):
                fake.clear()
            alone = await run_scenario(
                scenario, ScriptedModel(scripted_client("openai", a.base_url), a, scenario), db
            )
            c.script(contrarian_turn())
            contrarian = await run_scenario(scenario, scripted_client("openai", c.base_url), db)
            contrarian.scenario = f"{scenario.name}+contrarian"
            for fake in (a, b, c):
                fake.clear()
            c.script(contrarian_turn())
            members = {
                "a": ScriptedModel(scripted_client("openai", a.base_url), a, scenario),
                "b": ScriptedModel(scripted_client("anthropic", b.base_url), b, scenario),
                "c": scripted_client("openai", c.base_url),
            }
            together = await run_council(scenario, members, db)
            results += [(scenario, alone), (scenario, contrarian), (scenario, together)]
    return results


def scripted_client(api: str, base_url: str) -> ChatModel:
    if api == "anthropic":
        from workflows.llm.anthropic_chat import AnthropicChat

        return AnthropicChat("sk-ant-scripted", "scripted", base_url=base_url)
    from workflows.llm.openai_chat import OpenAIChat

    return OpenAIChat("sk-scripted", "scripted", base_url=f"{base_url}/v1")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--provider", choices=("openai", "anthropic"))
    parser.add_argument("--model", help="model name (default: $LLM_MODEL, else a small one)")
    parser.add_argument("--scenario", action="append", help="run only this one (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each score's notes")
    parser.add_argument(
        "--council",
        action="store_true",
        help="scripted only: each model alone beside a council of three (issue 20)",
    )
    args = parser.parse_args()
    every = load_scenarios()
    unknown = [name for name in args.scenario or () if name not in every]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(sorted(every))}")
    chosen = [every[name] for name in args.scenario] if args.scenario else list(every.values())
    asyncio.run(evaluate(args, chosen))


if __name__ == "__main__":
    main()
