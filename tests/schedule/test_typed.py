"""Sentences as Feishu users type them (`typed.yaml`, a corpus apart from `corpus.yaml`) and
sentences for the grammar rather than the examples (`grammar.yaml`: spaces inside Chinese,
contradictions, shorthand, days from the month's end, framing words around the time): every
one through the parser, fire times compared as instants, and the ends of bounded schedules."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.schedule.test_corpus import problems, run_entry

TYPED = Path(__file__).with_name("typed.yaml")
GRAMMAR = Path(__file__).with_name("grammar.yaml")


@cache
def typed(path: Path = TYPED) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return entries


def test_typed_size() -> None:
    languages = [entry["lang"] for entry in typed()]
    assert len(languages) >= 150
    assert languages.count("zh") > len(languages) / 2
    assert languages.count("en") >= 20
    assert languages.count("mixed") >= 3
    statuses = {entry["status"] for entry in typed()}
    assert statuses == {"scheduled", "clarify", "not_schedule"}


@pytest.mark.parametrize("entry", typed(), ids=lambda e: str(e["text"])[:40])
def test_typed_utterance(entry: dict[str, Any]) -> None:
    got = run_entry(entry)
    assert not problems(entry, got), (entry["text"], problems(entry, got))


def test_grammar_size() -> None:
    languages = [entry["lang"] for entry in typed(GRAMMAR)]
    assert len(languages) >= 60
    assert {"zh", "en", "mixed"} <= set(languages)
    assert {entry["status"] for entry in typed(GRAMMAR)} == {"scheduled", "clarify"}


@pytest.mark.parametrize("entry", typed(GRAMMAR), ids=lambda e: str(e["text"])[:40])
def test_grammar_utterance(entry: dict[str, Any]) -> None:
    got = run_entry(entry)
    assert not problems(entry, got), (entry["text"], problems(entry, got))
