"""The corpus (`corpus.yaml`): every utterance through the parser, and a sample through the real
CLI in one subprocess (stdin JSON lines), fire times compared as instants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.schedule.parser import parse

CORPUS = Path(__file__).with_name("corpus.yaml")
ROOT = Path(__file__).resolve().parents[2]
CLI_SAMPLE = 24


@cache
def corpus() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return entries


def instants(values: list[str]) -> list[datetime]:
    """ISO strings as UTC instants (so zones and DST folds cannot fool the comparison)."""
    found = [datetime.fromisoformat(value) for value in values]
    assert all(value.tzinfo is not None for value in found), values
    return [value.astimezone(UTC) for value in found]


def problems(entry: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Why the contract object `got` does not meet the corpus `entry` (empty: it does)."""
    found: list[str] = []
    if got["status"] != entry["status"]:
        found.append(f"status {got['status']} (question: {got.get('question')})")
        return found
    if "task" in entry and got["task"] != entry["task"]:
        found.append(f"task {got['task']!r}, expected {entry['task']!r}")
    if got["timezone"] != entry.get("timezone", entry["tz"]):
        found.append(f"timezone {got['timezone']}")
    if entry["status"] == "clarify" and not got["question"]:
        found.append("no question")
    if entry["status"] == "scheduled":
        expected = instants(entry["runs"])[:5]
        runs = instants(got["next_runs"])[: len(expected)]
        if runs != expected:
            found.append(f"runs {got['next_runs'][: len(expected)]}")
        if entry.get("all_runs"):  # the schedule ends: `runs` are all its fires
            if len(got["next_runs"]) != len(expected):
                found.append(f"{len(got['next_runs'])} next runs, expected {len(expected)}")
        elif len(expected) > 1 and len(got["next_runs"]) != 5:
            found.append("fewer than 5 next runs")
    return found


def run_entry(entry: dict[str, Any]) -> dict[str, Any]:
    now = datetime.fromisoformat(entry["now"])
    return parse(entry["text"], now=now, timezone=entry["tz"]).contract(now)


CATEGORIES = ("core", "dates", "relative", "en_times", "recurrence", "workdays", "questions")


def category(entry: dict[str, Any]) -> str:
    """The kind of sentence (issue 17's items); `core` for the corpus of issue 7."""
    return str(entry.get("category", "core"))


def test_corpus_size() -> None:
    languages = [entry["lang"] for entry in corpus()]
    assert len(languages) >= 600
    assert languages.count("zh") >= 250
    assert languages.count("en") >= 250
    assert languages.count("mixed") >= 10
    kinds = [category(entry) for entry in corpus()]
    assert set(kinds) == set(CATEGORIES)
    assert len(kinds) - kinds.count("core") >= len(kinds) / 2  # half in the styles of issue 17
    for kind in CATEGORIES:
        kind_languages = {e["lang"] for e in corpus() if category(e) == kind}
        assert ({"en"} if kind == "en_times" else {"zh", "en"}) <= kind_languages, kind
    for entry in corpus():
        if entry["status"] == "scheduled":
            assert len(entry["runs"]) >= 3 or (entry["runs"] and "run_at" not in entry)


@pytest.mark.parametrize("entry", corpus(), ids=lambda e: str(e["text"])[:40])
def test_utterance(entry: dict[str, Any]) -> None:
    got = run_entry(entry)
    assert not problems(entry, got), (entry["text"], problems(entry, got))


def test_sample_through_the_cli() -> None:
    """The contract end to end: a spread of the corpus as JSON lines through `larkops`."""
    entries = corpus()
    step = max(1, len(entries) // CLI_SAMPLE)
    sample = entries[::step][:CLI_SAMPLE]
    lines = [json.dumps({"text": e["text"], "now": e["now"], "tz": e["tz"]}) for e in sample]
    env = {**os.environ, "LLM_PROVIDER": "rules", "LARKOPS_TIMEZONE": "Asia/Shanghai"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "schedule", "parse", "--json"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    )
    outputs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(outputs) == len(sample)
    for entry, got in zip(sample, outputs, strict=True):
        assert not problems(entry, got), (entry["text"], problems(entry, got))
